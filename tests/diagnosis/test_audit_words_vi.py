"""An audit event recorded while English was active reads in Vietnamese on a Vietnamese page: the sentence is made
at display time from the stored detail."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.utils import translation

from diagnosis import audit_words, locale_settings, people, reviews
from diagnosis.audit import Origin
from diagnosis.models import AuditAction, AuditEvent, Label, Role
from diagnosis.numbers import percent
from diagnosis.site import card, monitoring, operating_points
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


def _health_alerts(admin) -> list[AuditEvent]:
    """The daily run's model health alerts (recorded in English), with their audit events."""
    logit = float(card.card().temperature * np.log(0.3 / 0.7))
    factories.site_studies(admin, [logit] * 60, [0] * 60, acceptance=False)
    with translation.override("en"):
        monitoring.run_daily()
    return list(AuditEvent.objects.filter(action=AuditAction.SITE_ALERT).order_by("pk"))


def test_a_model_health_alert_reads_as_a_sentence_in_either_language(clinic_a) -> None:
    events = {e.detail["kind"]: e for e in _health_alerts(make_member("ann", clinic_a, Role.ADMIN))}
    psi = events["psi"]
    with translation.override("en"):
        (line,) = audit_words.lines([psi])
        assert line.detail == f"level act: {psi.detail['message']}"
        assert line.target == f"sitealert {psi.target_id}"
    with translation.override("vi"):
        (line,) = audit_words.lines([psi])
    assert line.detail.startswith("mức cần xử lý: Phân bố xác suất đã dịch chuyển: chỉ số ổn định quần thể (PSI) ")
    assert re.search(r"\(PSI\) \d+,\d{3} ≥ 0,25 \(cần xử lý\)\.$", line.detail)
    assert line.target == f"cảnh báo tình trạng mô hình {psi.target_id}"


def test_operating_point_events_read_as_sentences(clinic_a) -> None:
    admin = make_member("ann", clinic_a, Role.ADMIN)
    factories.separable_site(admin)
    with translation.override("en"):
        first = operating_points.adopt(user=admin, target_sensitivity=0.95, reason="acceptance set")
        operating_points.adopt(user=admin, target_sensitivity=0.9, reason="fewer false alarms")
        operating_points.revert(user=admin, reason="back")  # reinstates version 1 as version 3
        operating_points.revert(user=admin, reason="card")  # nothing before 3 for it: back to the card
    events = list(AuditEvent.objects.filter(action=AuditAction.OPERATING_POINT).order_by("pk"))
    model, threshold = first.model_version, first.threshold
    with translation.override("en"):
        english = [line.detail for line in audit_words.lines(events)]
        shown = percent(round(threshold, 4), 1)
    assert english[0] == (
        f"adopted operating point version 1 for model {model}: threshold {shown}, target sensitivity 95%; "
        "reason: “acceptance set”"
    )
    assert english[2].startswith(f"reinstated operating point version 1 as version 3 for model {model}: threshold ")
    assert english[3] == (
        f"retired operating point version 3 for model {model}, back to the model card's threshold; reason: “card”"
    )
    with translation.override("vi"):
        vietnamese = [line.detail for line in audit_words.lines(events)]
        shown = percent(round(threshold, 4), 1)
    assert "," in shown and vietnamese[0] == (
        f"áp dụng điểm vận hành phiên bản 1 cho mô hình {model}: ngưỡng {shown}, độ nhạy mục tiêu 95%; "
        "lý do: “acceptance set”"
    )
    assert vietnamese[2].startswith("khôi phục điểm vận hành phiên bản 1 thành phiên bản 3 cho mô hình ")
    assert vietnamese[3] == (
        f"thôi dùng điểm vận hành phiên bản 3 cho mô hình {model}, quay về ngưỡng của thẻ mô hình; lý do: “card”"
    )


def test_a_clinic_settings_change_reads_as_a_sentence(clinic_a) -> None:
    admin = make_member("ann", clinic_a, Role.ADMIN)
    locale_settings.set_clinic_locale(admin, language="vi", time_zone="Asia/Ho_Chi_Minh")
    (event,) = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE, target_type="clinic")
    with translation.override("en"):
        (line,) = audit_words.lines([event])
        assert line.target == f"clinic {clinic_a.pk}"
    zone = event.detail["from"]["time_zone"]
    assert line.detail == (
        f"changed the clinic's settings: language follow the browser → Tiếng Việt; time zone {zone} → Asia/Ho_Chi_Minh"
    )
    with translation.override("vi"):
        (line,) = audit_words.lines([event])
    assert line.target == f"phòng khám {clinic_a.pk}"
    assert line.detail == (
        f"đã đổi cài đặt phòng khám: ngôn ngữ theo trình duyệt → Tiếng Việt; múi giờ {zone} → Asia/Ho_Chi_Minh"
    )
