"""Model health alerts are stored in English (the row, the audit detail, the e-mail); a Vietnamese page says them
in Vietnamese, figures with the decimal comma and the levels in words, and an English page exactly as stored."""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np
import pytest
from django.core import mail
from django.test import Client
from django.utils import translation

from diagnosis.models import Role, SiteAlert
from diagnosis.site import alert_words, card, monitoring
from tests import factories
from tests.diagnosis.vi import vi_catalog
from tests.factories import make_member
from worker.ml import drift

pytestmark = pytest.mark.usefixtures("vi_catalog")
__all__ = ["vi_catalog"]


def _logit(probability: float) -> float:
    return float(card.card().temperature * np.log(probability / (1 - probability)))


def _every_kind_of_alert() -> list[drift.Alert]:
    """The sentences as worker.ml.drift writes them: both histogram measures, a rate that fell, one that rose."""
    return (
        drift.distribution_alerts(13.6095, 0.9894)
        + drift.rate_alerts("positive_rate", drift.rate_change(0.73 * 5232, 5232, 0, 62))
        + drift.rate_alerts("rejection_rate", drift.rate_change(0.01 * 5232, 5232, 40, 100))
    )


def test_drifts_sentences_read_in_vietnamese_with_the_decimal_comma() -> None:
    psi, js, positive, rejection = _every_kind_of_alert()
    assert positive.message.startswith("The positive rate moved from 0.730 to 0.000 (change -0.730, p = ")
    with translation.override("vi"):
        shown = [alert_words.shown(a) for a in (psi, js, positive, rejection)]
    assert shown[0].message == (
        "Phân bố xác suất đã dịch chuyển: chỉ số ổn định quần thể (PSI) 13,610 ≥ 0,25 (cần xử lý)."
    )
    assert shown[1].message == "Phân bố xác suất đã dịch chuyển: khoảng cách Jensen-Shannon 0,989 ≥ 0,1 (theo dõi)."
    assert shown[2].message.startswith(
        "Đã có thay đổi ở tỷ lệ dương tính: từ 0,730 thành 0,000 (chênh lệch -0,730, p = "
    )
    assert shown[2].message.endswith("; mức cần xử lý từ 0,10).")
    assert "chênh lệch +0,390" in shown[3].message and "tỷ lệ bị từ chối" in shown[3].message
    assert "e-" in shown[2].message  # p = 3,2e-37: its exponent kept, its decimals with the comma
    assert [(a.kind, a.level) for a in shown] == [
        ("PSI", "cần xử lý"),
        ("khoảng cách JS", "theo dõi"),
        ("tỷ lệ dương tính", "cần xử lý"),
        ("tỷ lệ bị từ chối", "cần xử lý"),
    ]
    assert [(a.kind_code, a.level_code) for a in shown] == [
        ("psi", "act"),
        ("js", "watch"),
        ("positive_rate", "act"),
        ("rejection_rate", "act"),
    ]
    assert [a.value for a in shown] == [a.value for a in (psi, js, positive, rejection)]


def test_in_english_every_sentence_reads_exactly_as_stored() -> None:
    with translation.override("en"):
        for alert in _every_kind_of_alert():
            shown = alert_words.shown(alert)
            assert (shown.kind, shown.level, shown.message) == (alert.kind, alert.level, alert.message)


def test_a_sentence_no_pattern_knows_is_shown_as_stored() -> None:
    with translation.override("vi"):
        assert alert_words.message_text("Something new happened: 0.5.") == "Something new happened: 0.5."
        assert alert_words.level_text("critical") == "critical" and alert_words.kind_text("new_rule") == "new_rule"
        assert alert_words.figure("73.0%") == "73,0%" and alert_words.figure("+0.123") == "+0,123"


@pytest.mark.django_db
def test_the_agreement_alerts_of_monitoring_in_vietnamese(clinic_a: Any) -> None:
    admin = make_member("ada", clinic_a, Role.ADMIN)
    # 30 reviewed pneumonia cases, the model called 15 of them normal: sensitivity 50 %, disagreement 50 %
    logits = [_logit(0.9)] * 15 + [_logit(0.2)] * 15
    factories.site_studies(admin, logits, [1] * 30, acceptance=False, sampled=0.1)
    with translation.override("en"):
        health = monitoring.health(clinic_a)
        english = {a.kind: a.message for a in health.alerts}
        assert {a.kind: a.message for a in monitoring.in_words(health).alerts} == english
    with translation.override("vi"):
        said = {a.kind_code: a for a in monitoring.in_words(health).alerts}  # type: ignore[attr-defined]
    target = f"{next(a.threshold for a in health.alerts if a.kind == 'sensitivity'):.0%}"  # the clinic's target
    assert english["sensitivity"] == (
        f"Sensitivity in the verification sample is 50.0% (95 % up to 66.8%), below the target {target}."
    )
    assert said["sensitivity"].message == (
        f"Độ nhạy trong mẫu kiểm chứng là 50,0% (cận trên khoảng tin cậy 95 % là 66,8%), thấp hơn mục tiêu {target}."
    )
    assert (
        said["disagreement"].message
        == "Người duyệt không đồng ý với mô hình ở 50% mẫu kiểm chứng (theo dõi khi trên 15%)."
    )
    assert (said["sensitivity"].level, said["disagreement"].level) == ("cần xử lý", "theo dõi")


@pytest.mark.django_db
def test_an_alert_recorded_in_english_reads_in_vietnamese_on_the_pages(clinic_a: Any) -> None:
    admin = make_member("ada", clinic_a, Role.ADMIN)
    factories.site_studies(admin, [_logit(0.3)] * 60, [0] * 60, acceptance=False)
    with translation.override("en"):
        monitoring.run_daily()
    stored = SiteAlert.objects.get(kind="psi")
    assert stored.message.startswith("The probability distribution moved: population stability index ")
    client = Client()
    client.force_login(admin)
    pages = {path: client.get(path, HTTP_ACCEPT_LANGUAGE="vi").content.decode() for path in ("/site/", "/dashboard/")}
    for path, page in pages.items():
        assert "The probability distribution moved" not in page, path
        assert "Phân bố xác suất đã dịch chuyển: chỉ số ổn định quần thể (PSI)" in page, path  # the banner, the site
        assert " act:" not in page and "cần xử lý" in page, path
    assert "PSI: cần xử lý" in pages["/dashboard/"]  # the dashboard's tags: kind and level in words
    english = client.get("/site/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"act: {escape(stored.message)}" in english  # the banner, as before


@pytest.mark.django_db
def test_the_admins_mail_is_in_the_clinics_language(clinic_a: Any, clinic_b: Any, settings: Any) -> None:
    settings.EMAIL_HOST = "smtp.example"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    clinic_a.language = "vi"
    clinic_a.save()
    for clinic, name in ((clinic_a, "ada"), (clinic_b, "bea")):
        admin = make_member(name, clinic, Role.ADMIN)
        admin.email = f"{name}@clinic.example"
        admin.save()
        factories.site_studies(admin, [_logit(0.3)] * 60, [0] * 60, acceptance=False)
    monitoring.run_daily()
    mails = {(m.to[0], m.subject): m.body for m in mail.outbox}
    stored = SiteAlert.objects.get(clinic=clinic_b, kind="psi").message
    assert mails[("bea@clinic.example", "Model health alert (act): psi")] == stored  # English, as before
    vietnamese = mails[("ada@clinic.example", "Cảnh báo tình trạng mô hình (cần xử lý): PSI")]
    assert vietnamese.startswith("Phân bố xác suất đã dịch chuyển: chỉ số ổn định quần thể (PSI) ")
