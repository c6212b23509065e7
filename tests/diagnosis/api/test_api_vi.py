"""The API's human-readable `detail` follows Accept-Language; its codes and field names stay English."""

from __future__ import annotations

import pytest
from django.urls import reverse

from diagnosis.models import Label
from tests import factories
from tests.diagnosis.vi import vi_catalog

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("vi_catalog")]
__all__ = ["vi_catalog"]


def test_detail_in_vietnamese_codes_in_english(alice, alice_api) -> None:
    study = factories.judged_study(alice, Label.PNEUMONIA, 0.9)
    review = reverse("api:study-review", args=[study.pk])
    refused = alice_api.post(review, {"decision": "agree"}, format="json", HTTP_ACCEPT_LANGUAGE="vi")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Việc này cần vai trò người duyệt."}
    english = alice_api.post(review, {"decision": "agree"}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert english.json() == {"detail": "This needs the reviewer role."}
    got = alice_api.get(reverse("api:study-detail", args=[study.pk]), HTTP_ACCEPT_LANGUAGE="vi").json()
    assert got["status"] == "done"
    assert got["label"] == "PNEUMONIA"


def test_validation_message_in_vietnamese_under_its_english_field(alice_api) -> None:
    answer = alice_api.post(reverse("api:study-list"), {}, format="multipart", HTTP_ACCEPT_LANGUAGE="vi")
    assert answer.status_code == 400
    body = answer.json()
    assert "Hãy gửi một hoặc nhiều tệp trong 'images', hoặc một tệp zip trong 'archive'." in str(body)
    assert "Send one or more files" not in str(body)
