"""An audit event recorded while English was active reads in Vietnamese on a Vietnamese page: the sentence is made
at display time from the stored detail."""

from __future__ import annotations

import pytest
from django.utils import translation

from diagnosis import audit_words, people, reviews
from diagnosis.audit import Origin
from diagnosis.models import AuditAction, AuditEvent, Label, Role
from tests import factories
from tests.diagnosis.vi import vi_catalog
from tests.factories import make_member

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("vi_catalog")]
__all__ = ["vi_catalog"]


def test_events_stored_in_english_read_in_vietnamese(clinic_a, alice) -> None:
    admin = make_member("ann", clinic_a, Role.ADMIN)
    alice.first_name, alice.last_name = "Alice", "Liddell"
    alice.save()
    with translation.override("en"):
        people.set_role(admin, alice.membership, Role.REVIEWER, Origin())
        reviews.review_study(alice, factories.judged_study(alice, Label.PNEUMONIA), agrees=False, note="mờ")
    role_change = AuditEvent.objects.get(action=AuditAction.PERMISSION_CHANGE)
    review = AuditEvent.objects.get(action=AuditAction.REVIEW)
    with translation.override("en"):
        english = [line.detail for line in audit_words.lines([role_change, review])]
    with translation.override("vi"):
        vietnamese = [line.detail for line in audit_words.lines([role_change, review])]
    assert english == [
        "changed the role of Alice Liddell from clinician to reviewer",
        "disagreed with the model (Pneumonia): Normal; note: “mờ”",
    ]
    assert vietnamese[1] == "không đồng ý với mô hình (Viêm phổi): Bình thường; ghi chú: “mờ”"
    assert vietnamese[0].startswith("đã đổi vai trò của Alice Liddell từ ")  # the roles' words: the core helper's


def test_an_export_and_its_filters(clinic_a, alice) -> None:
    from diagnosis import audit

    with translation.override("en"):
        event = audit.record(alice, AuditAction.EXPORT, detail={"what": "worklist_csv", "filters": {"reviewed": "yes"}})
    with translation.override("vi"):
        assert audit_words.describe(event) == "đã xuất Danh sách chờ đọc ra CSV, lọc theo đã duyệt yes"
    with translation.override("en"):
        assert audit_words.describe(event) == "exported the Worklist as CSV, filtered by reviewed yes"
