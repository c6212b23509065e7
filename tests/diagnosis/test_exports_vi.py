"""The CSV exports' header in the reader's language; the cells keep their codes."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from diagnosis.models import Label
from tests import factories
from tests.diagnosis.vi import vi_catalog

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("vi_catalog")]
__all__ = ["vi_catalog"]


def _export(user, language: str) -> list[str]:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    response = client.get(reverse("diagnosis:history_export"))
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode("utf-8-sig").splitlines()  # type: ignore[attr-defined]


def test_history_csv_header_in_vietnamese(alice) -> None:
    factories.judged_study(alice, Label.PNEUMONIA, 0.9)
    header, row = _export(alice, "vi")
    assert header.startswith('"mã ca chụp","thời điểm tải lên","người tải lên","mã bệnh nhân"')
    assert '"xác suất viêm phổi","ngưỡng quyết định","sát ngưỡng"' in header
    assert '"done"' in row and '"PNEUMONIA"' in row  # codes, as scripts compare them


def test_english_header_unchanged(alice) -> None:
    factories.judged_study(alice, Label.PNEUMONIA, 0.9)
    header = _export(alice, "en")[0]
    assert header.startswith('"study_id","uploaded","uploader","patient_ref"')
