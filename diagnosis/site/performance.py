"""How the model performs at a clinic, on its own ground truth, at the operating point in force (recomputed from
each study's logit), beside the model card's figures."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from diagnosis.models import Clinic, OperatingPoint
from diagnosis.site import card as model_card
from diagnosis.site.ground_truth import ACCEPTANCE, VERIFICATION, GroundTruth, local_ground_truth
from diagnosis.site.operating_points import in_force
from worker.ml import site
from worker.ml.operating_point import OperatingPoint as Point

SOURCES = {
    ACCEPTANCE: _("Acceptance set (labelled by a clinic admin)"),
    VERIFICATION: _("Verification sample (reviewed; weighted by the inverse of each study's sampling probability)"),
}


@dataclass(frozen=True)
class SitePerformance:
    clinic: Clinic
    model_version: str
    point: OperatingPoint | None  # in force; None: the card's
    threshold: float
    since: datetime | None
    by_source: dict[str, site.Performance | None]  # None: not enough of both classes to measure
    counts: dict[str, int]
    card: dict[str, Any]  # the card's honest validation figures, for comparison

    def as_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "model_version": self.model_version,
                "operating_point": self.point.version if self.point else None,
                "site_validated": self.point is not None,
                "threshold": self.threshold,
                "since": self.since.isoformat() if self.since else None,
                "studies": self.counts,
                "sources": {
                    name: {"description": SOURCES[name], **(perf.as_dict() if perf else {"figures": None})}
                    for name, perf in self.by_source.items()
                },
                "model_card": self.card,
            }
        )


def json_safe(value: Any) -> Any:
    """NaN and infinities become null (strict JSON has neither); tuples become lists."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def measure(clinic: Clinic, days: int | None = None) -> SitePerformance:
    version = model_card.model_version()
    point = in_force(clinic.pk, version)
    applied = point.point() if point is not None else model_card.card().operating_point()
    since = timezone.now() - timedelta(days=days) if days else None
    truth = local_ground_truth(clinic_id=clinic.pk, model_version=version, since=since)
    by_source = {name: _measured(truth.only(name), applied) for name in SOURCES}
    return SitePerformance(
        clinic=clinic,
        model_version=version,
        point=point,
        threshold=applied.threshold,
        since=since,
        by_source=by_source,
        counts={name: truth.count(name) for name in SOURCES},
        card=card_figures(),
    )


def _measured(truth: GroundTruth, point: Point) -> site.Performance | None:
    if truth.n_positive == 0 or truth.n_negative == 0:
        return None
    probs = point.probabilities(truth.logits)
    weights = truth.weights if truth.weighted else None
    return site.performance(probs, truth.labels, point.threshold, weights)


def card_figures() -> dict[str, Any]:
    """The model card's figures on its own honest validation (pooled folds), as the card states them."""
    pooled = model_card.card().card.get("honest_validation", {}).get("pooled", {})
    return {k: pooled.get(k) for k in ("n", "sensitivity", "specificity", "auc", "ece", "threshold")}
