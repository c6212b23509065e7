"""A clinic's standing as plain data: the API's answers and the site page read the same dictionaries."""

from __future__ import annotations

from typing import Any

from diagnosis.models import OperatingPoint
from diagnosis.site import card as model_card
from diagnosis.site import operating_points
from diagnosis.site.operating_points import MIN_PER_CLASS, PROPOSAL_RULE, Standing
from diagnosis.site.performance import json_safe


def point_dict(row: OperatingPoint | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "version": row.version,
        "model_version": row.model_version,
        "threshold": row.threshold,
        "slope": row.slope,
        "intercept": row.intercept,
        "target_sensitivity": row.target_sensitivity,
        "reason": row.reason,
        "adopted_by": row.adopted_by.get_username(),
        "adopted_at": row.adopted_at.isoformat(),
        "retired_at": row.retired_at.isoformat() if row.retired_at else None,
        "reinstates": row.reinstates.version if row.reinstates_id and row.reinstates else None,
        "studies": len(row.evidence.get("study_ids", [])),
        "expected_sensitivity": row.evidence.get("expected_sensitivity"),
        "expected_specificity": row.evidence.get("expected_specificity"),
    }


def standing_dict(now: Standing) -> dict[str, Any]:
    card = model_card.card()
    proposal = now.proposal
    history = operating_points.history(now.clinic)
    return json_safe(
        {
            "model_version": now.model_version,
            "site_validated": now.validated,
            "in_force": point_dict(now.in_force),
            "stale": point_dict(now.stale),
            "model_card_point": {"threshold": card.threshold, "temperature": card.temperature},
            "target_sensitivity": now.target_sensitivity,
            "rule": PROPOSAL_RULE,
            "evidence": {
                "acceptance_studies": now.n_acceptance,
                "verification_studies": now.n_verification,
                "pneumonia": now.truth.n_positive,
                "normal": now.truth.n_negative,
                "minimum_per_class": MIN_PER_CLASS,
            },
            "proposal": proposal.as_dict() if proposal is not None else None,
            "can_adopt": proposal is not None and proposal.enough,
            "why_not": now.why_not,
            "history": [point_dict(row) for row in history],
        }
    )
