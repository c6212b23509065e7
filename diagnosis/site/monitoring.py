"""Watching a clinic after go-live (daily, on beat; manage.py monitoring_report prints it).

- Output drift: the model's probabilities on the card's own scale (sigmoid(logit / T): what an adopted point
  does not change) over the last DRIFT_DAYS, against the card's monitoring reference (worker.ml.drift's rules).
- Input drift: the share of uploads the gate refused, against the reference's.
- Agreement: in the reviewed verification sample of the last LABEL_DAYS, how often reviewers disagree, and the
  weighted sensitivity and specificity (AGREEMENT_RULES).

A rule that fires makes one SiteAlert a clinic, rule and day (the run is idempotent), an audit event, and an
e-mail to the clinic's admins when e-mail is configured; admins see a banner until the alert is a week old.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Count, Q
from django.utils import timezone, translation
from django.utils.translation import gettext

from diagnosis import audit
from diagnosis.models import AuditAction, Clinic, InferenceJob, JobStatus, Label, Membership, Result, Role, SiteAlert
from diagnosis.site import alert_words
from diagnosis.site import card as model_card
from diagnosis.site.ground_truth import inverse_probability
from diagnosis.site.operating_points import in_force, target_for
from diagnosis.site.performance import json_safe
from worker.ml import drift, site

logger = logging.getLogger(__name__)
DRIFT_DAYS = 7
LABEL_DAYS = 30
MIN_REVIEWED = 20
DISAGREEMENT_WATCH = 0.15
BANNER_DAYS = 7
AGREEMENT_RULES = (
    f"With at least {MIN_REVIEWED} reviewed verification-sample studies in the last {LABEL_DAYS} days: 'act' when "
    "the 95 % upper bound of the weighted sensitivity is below the clinic's target sensitivity, and 'watch' when "
    f"reviewers disagree with the model on more than {DISAGREEMENT_WATCH:.0%} of them."
)
INPUT_RULES = (
    "The share of uploads refused by the gate (not a usable chest radiograph) is held to the reference's with the "
    "rate rule above."
)


@dataclass(frozen=True)
class Health:
    """One clinic's monitoring figures for the window ending on `day`."""

    clinic: str
    day: date
    model_version: str
    judged: int
    psi: float | None
    js: float | None
    positive_rate: float | None
    reference_positive_rate: float
    submitted: int
    rejected: int
    reviewed: int
    disagreements: int
    sensitivity: site.Proportion | None
    specificity: site.Proportion | None
    alerts: tuple[drift.Alert, ...]

    def as_dict(self) -> dict[str, Any]:
        return json_safe({**asdict(self), "day": self.day.isoformat()})


def reference() -> dict[str, Any]:
    ref = model_card.card().card.get("monitoring_reference")
    if not ref:
        raise LookupError("the model card has no monitoring_reference (python -m tools.model_reference)")
    return dict(ref)


def health(clinic: Clinic, day: date | None = None) -> Health:
    day = day or timezone.localdate()
    end = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
    version = model_card.model_version()
    card, ref = model_card.card(), reference()
    results = Result.objects.filter(study__clinic=clinic, study__acceptance=False, model_version=version)
    recent = results.filter(created__gte=end - timedelta(days=DRIFT_DAYS), created__lt=end, logit__isnull=False)
    probs = card.operating_point().probabilities(np.array(list(recent.values_list("logit", flat=True)), dtype=float))
    called = probs >= card.threshold
    jobs = InferenceJob.objects.filter(
        study__clinic=clinic, study__acceptance=False, finished_at__gte=end - timedelta(days=DRIFT_DAYS)
    ).filter(finished_at__lt=end)
    counts = jobs.aggregate(n=Count("pk"), rejected=Count("pk", filter=Q(status=JobStatus.REJECTED)))
    alerts = drift.output_alerts(ref["probability_histogram"], ref["positive_rate"], ref["n"], probs, called)
    alerts += _input_alerts(ref, counts["rejected"], counts["n"])
    labelled = _reviewed(results, end)
    agreement = _agreement(labelled, clinic, version)
    current = drift.histogram(probs) if probs.size else None
    return Health(
        clinic=clinic.slug,
        day=day,
        model_version=version,
        judged=int(probs.size),
        psi=drift.psi(ref["probability_histogram"], current) if current is not None else None,
        js=drift.js_distance(ref["probability_histogram"], current) if current is not None else None,
        positive_rate=float(called.mean()) if probs.size else None,
        reference_positive_rate=float(ref["positive_rate"]),
        submitted=counts["n"],
        rejected=counts["rejected"],
        reviewed=len(labelled[0]),
        disagreements=int(np.sum(labelled[0] != labelled[1])) if len(labelled[0]) else 0,
        sensitivity=agreement[0],
        specificity=agreement[1],
        alerts=tuple(alerts + agreement[2]),
    )


def _input_alerts(ref: dict[str, Any], rejected: int, submitted: int) -> list[drift.Alert]:
    if submitted < drift.MIN_CURRENT:
        return []
    n = float(ref["n"])
    change = drift.rate_change(float(ref.get("rejection_rate", 0.0)) * n, n, float(rejected), float(submitted))
    return drift.rate_alerts("rejection_rate", change)


Labelled = tuple[np.ndarray, np.ndarray, np.ndarray]  # model calls, reviewers' labels, weights (1 = PNEUMONIA)


def _reviewed(results: Any, end: datetime) -> Labelled:
    rows = results.filter(
        verification_sample=True,
        study__review__isnull=False,
        created__gte=end - timedelta(days=LABEL_DAYS),
        created__lt=end,
    ).values_list("label", "study__review__final_label", "sampling_probability")
    calls, truth, weights = [], [], []
    for label, final, chance in rows:
        calls.append(int(label == Label.PNEUMONIA))
        truth.append(int(final == Label.PNEUMONIA))
        weights.append(inverse_probability(chance))
    return np.array(calls, dtype=int), np.array(truth, dtype=int), np.array(weights, dtype=float)


def _agreement(
    labelled: Labelled, clinic: Clinic, version: str
) -> tuple[site.Proportion | None, site.Proportion | None, list[drift.Alert]]:
    calls, truth, weights = labelled
    if len(calls) < MIN_REVIEWED:
        return None, None, []
    positive = truth == 1
    sens = site.proportion((calls == 1)[positive], weights[positive]) if positive.any() else None
    spec = site.proportion((calls == 0)[~positive], weights[~positive]) if (~positive).any() else None
    alerts = []
    point = in_force(clinic.pk, version)
    target = point.target_sensitivity if point is not None else target_for(clinic)
    if sens is not None and sens.high < target:
        message = (
            f"Sensitivity in the verification sample is {sens.value:.1%} (95 % up to {sens.high:.1%}), "
            f"below the target {target:.0%}."
        )
        alerts.append(drift.Alert("sensitivity", "act", sens.high, target, message))
    disagreement = float(np.mean(calls != truth))
    if disagreement > DISAGREEMENT_WATCH:
        message = (
            f"Reviewers disagreed with {disagreement:.0%} of the verification sample "
            f"(watch above {DISAGREEMENT_WATCH:.0%})."
        )
        alerts.append(drift.Alert("disagreement", "watch", disagreement, DISAGREEMENT_WATCH, message))
    return sens, spec, alerts


def run_daily(day: date | None = None) -> list[SiteAlert]:
    """Every clinic's health for `day`; each alert that fired is recorded once (new ones audited and mailed)."""
    new: list[SiteAlert] = []
    for clinic in Clinic.objects.all():
        figures = health(clinic, day)
        for alert in figures.alerts:
            row, created = SiteAlert.objects.get_or_create(
                clinic=clinic,
                day=figures.day,
                kind=alert.kind,
                defaults={
                    "level": alert.level,
                    "value": alert.value,
                    "limit": alert.threshold,
                    "message": alert.message,
                    "model_version": figures.model_version,
                },
            )
            if created:
                new.append(row)
                _tell(row)
    return new


def _tell(row: SiteAlert) -> None:
    detail = {"kind": row.kind, "level": row.level, "value": round(row.value, 4), "message": row.message}
    audit.record(None, AuditAction.SITE_ALERT, target=row, detail=detail, clinic=row.clinic)
    if not settings.EMAIL_HOST:
        return
    admins = Membership.objects.filter(clinic=row.clinic, role=Role.ADMIN, user__is_active=True)
    to = [m.user.email for m in admins.select_related("user") if m.user.email]
    if to:
        with translation.override(row.clinic.language or settings.LANGUAGE_CODE):  # the clinic's language
            said = alert_words.shown_row(row)
            subject = gettext("Model health alert (%(level)s): %(kind)s") % {"level": said.level, "kind": said.kind}
        try:
            send_mail(subject, said.message, None, to)
        except Exception:  # the alert is recorded and shown; a mail server down must not stop the run
            logger.warning("could not mail the alert to %s", to, exc_info=True)


def banner(clinic_id: int) -> list[SiteAlert]:
    """The alerts of the last BANNER_DAYS, newest first, for the admins' banner."""
    since = timezone.localdate() - timedelta(days=BANNER_DAYS)
    return list(SiteAlert.objects.filter(clinic_id=clinic_id, day__gte=since).order_by("-day", "kind")[:5])


def banner_in_words(clinic_id: int) -> list[alert_words.ShownAlert]:
    """banner() as the admins read it: each alert's level and sentence in the active language."""
    return [alert_words.shown_row(row) for row in banner(clinic_id)]


def in_words(figures: Health) -> Health:
    """A clinic's health with its alerts in the active language (the pages); health() keeps the codes and the
    stored English (the daily run, the report)."""
    return replace(figures, alerts=tuple(alert_words.shown(a) for a in figures.alerts))


def series(clinic: Clinic, days: int = 14) -> list[Health]:
    """health() for each of the last `days` days, oldest first, its alerts in words (the dashboard's Model
    health)."""
    today = timezone.localdate()
    return [in_words(health(clinic, today - timedelta(days=k))) for k in range(days - 1, -1, -1)]


def report(day: date | None = None) -> dict[str, Any]:
    return {
        "rules": {"output": drift.DRIFT_RULES, "input": INPUT_RULES, "agreement": AGREEMENT_RULES},
        "reference": reference(),
        "clinics": [health(clinic, day).as_dict() for clinic in Clinic.objects.all()],
    }
