"""Monitoring: drift against the card's reference, refusals, agreement in the verification sample; each rule's alert
recorded once a day, audited, mailed, and shown to admins."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from django.core import mail
from django.core.management import call_command

from diagnosis.models import AuditAction, AuditEvent, Role, SiteAlert
from diagnosis.site import card, monitoring
from tests import factories
from tests.factories import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(clinic_a: Any) -> Any:
    user = make_member("ada", clinic_a, Role.ADMIN)
    user.email = "ada@clinic.example"
    user.save()
    return user


def _logit(probability: float) -> float:
    """The logit at which the card shows this probability."""
    return float(card.card().temperature * np.log(probability / (1 - probability)))


def like_the_reference(n: int = 400) -> list[float]:
    """Logits whose card probabilities fill the reference histogram's bins in its proportions."""
    fractions = card.card().card["monitoring_reference"]["probability_histogram"]
    counts = np.round(np.array(fractions) * n).astype(int)
    return [_logit(min(0.99, (b + 0.5) / 10)) for b, c in enumerate(counts) for _ in range(c)]


def test_a_site_whose_healthy_children_sit_at_point_three_fires_before_it_adopts(admin: Any, clinic_a: Any) -> None:
    normals = [_logit(0.3)] * 60
    factories.site_studies(admin, normals + [_logit(0.98)] * 60, [0] * 60 + [1] * 60, acceptance=False)
    health = monitoring.health(clinic_a)
    kinds = {a.kind: a.level for a in health.alerts}
    assert health.psi is not None and health.psi >= 0.25 and kinds["psi"] == "act"
    assert health.judged == 120


def test_a_site_like_the_reference_fires_nothing(admin: Any, clinic_a: Any) -> None:
    logits = like_the_reference()
    factories.site_studies(admin, logits, [int(z > 0) for z in logits], acceptance=False)
    health = monitoring.health(clinic_a)
    assert health.psi is not None and health.psi < 0.1
    assert health.alerts == ()


def test_acceptance_studies_are_not_monitored(admin: Any, clinic_a: Any) -> None:
    factories.site_studies(admin, [_logit(0.3)] * 120, [0] * 120)
    assert monitoring.health(clinic_a).judged == 0


def test_the_daily_run_records_each_alert_once_audits_and_mails_it(admin: Any, clinic_a: Any, settings: Any) -> None:
    settings.EMAIL_HOST = "smtp.example"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    factories.site_studies(admin, [_logit(0.3)] * 100, [0] * 100, acceptance=False)
    first = monitoring.run_daily()
    assert {a.kind for a in first} >= {"psi"} and monitoring.run_daily() == []  # the second run adds nothing
    assert SiteAlert.objects.count() == len(first)
    assert AuditEvent.objects.filter(action=AuditAction.SITE_ALERT).count() == len(first)
    assert len(mail.outbox) == len(first) and mail.outbox[0].to == ["ada@clinic.example"]
    assert [a.pk for a in monitoring.banner(clinic_a.pk)] == [a.pk for a in SiteAlert.objects.order_by("-day", "kind")]


def test_reviewers_disagreeing_in_the_verification_sample_raise_the_agreement_rules(admin: Any, clinic_a: Any) -> None:
    # 30 reviewed pneumonia cases, the model called 15 of them normal: sensitivity 0.5, disagreement 50 %
    logits = [_logit(0.9)] * 15 + [_logit(0.2)] * 15
    factories.site_studies(admin, logits, [1] * 30, acceptance=False, sampled=0.1)
    health = monitoring.health(clinic_a)
    kinds = {a.kind: a.level for a in health.alerts}
    assert health.reviewed == 30 and health.disagreements == 15
    assert kinds["sensitivity"] == "act" and kinds["disagreement"] == "watch"


def test_the_report_command_prints_every_clinic_as_json(admin: Any, clinic_a: Any) -> None:
    factories.site_studies(admin, [_logit(0.3)] * 60, [0] * 60, acceptance=False)
    out = io.StringIO()
    call_command("monitoring_report", stdout=out)
    report = json.loads(out.getvalue())
    assert report["reference"]["n"] == 5232 and "PSI" in report["rules"]["output"]
    (site,) = report["clinics"]
    assert site["clinic"] == "a" and site["judged"] == 60 and site["alerts"][0]["kind"] == "psi"


def test_the_admin_sees_the_banner_and_the_dashboard_series(admin: Any, clinic_a: Any, client: Any) -> None:
    factories.site_studies(admin, [_logit(0.3)] * 60, [0] * 60, acceptance=False)
    monitoring.run_daily()
    client.force_login(admin)
    page = client.get("/dashboard/").content.decode()
    assert 'id="site-alerts"' in page and 'id="health-series"' in page and "psi: act" in page
