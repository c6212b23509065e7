"""A clinic's local ground truth: the studies whose true label it knows, without the bias of choosing them.

- The acceptance set: labelled radiographs a clinic admin submitted before go-live (Study.acceptance, with its
  reference_label), each counted once.
- The verification sample: after go-live, a random share of each call, drawn when the result was recorded
  (Result.verification_sample, with its sampling probability), whose reviewer's final label is the truth. Reviews
  of studies a reviewer chose are not used: the worklist shows the likeliest pneumonia first, so they are not a
  random sample. Each sampled study is weighted by the inverse of its sampling probability (Horvitz-Thompson),
  scaled so the sample's weights sum to its size: within the sample, a call drawn at 10 % counts twice as much as
  one drawn at 20 %, and the acceptance set keeps weight 1 a study.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db.models import Q

from diagnosis.models import Label, Result

ACCEPTANCE, VERIFICATION = "acceptance", "verification"


@dataclass(frozen=True)
class GroundTruth:
    """Studies with a known label. logits, labels (1 PNEUMONIA), weights and sources are (n,) arrays."""

    study_ids: tuple[str, ...]
    logits: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    sources: np.ndarray

    @property
    def n_positive(self) -> int:
        return int(self.labels.sum())

    @property
    def n_negative(self) -> int:
        return int(len(self.labels) - self.labels.sum())

    def count(self, source: str) -> int:
        return int((self.sources == source).sum())

    def only(self, source: str) -> GroundTruth:
        keep = self.sources == source
        return GroundTruth(
            study_ids=tuple(s for s, k in zip(self.study_ids, keep, strict=True) if k),
            logits=self.logits[keep],
            labels=self.labels[keep],
            weights=self.weights[keep],
            sources=self.sources[keep],
        )

    @property
    def weighted(self) -> bool:
        return bool((self.sources == VERIFICATION).any())


def local_ground_truth(*, clinic_id: int, model_version: str, since: datetime | None = None) -> GroundTruth:
    """The clinic's acceptance set and reviewed verification sample judged by `model_version` (results with a
    logit), recorded since `since` when given."""
    acceptance = Q(study__acceptance=True) & ~Q(study__reference_label="")
    verification = Q(study__acceptance=False, verification_sample=True, study__review__isnull=False)
    rows = Result.objects.filter(
        acceptance | verification, study__clinic_id=clinic_id, model_version=model_version, logit__isnull=False
    )
    if since is not None:
        rows = rows.filter(created__gte=since)
    values = rows.order_by("created", "pk").values_list(
        "study_id",
        "logit",
        "study__acceptance",
        "study__reference_label",
        "study__review__final_label",
        "sampling_probability",
    )
    ids, logits, labels, raw_weights, sources = [], [], [], [], []
    for study_id, logit, is_acceptance, reference, reviewed, sampled_at in values:
        ids.append(str(study_id))
        logits.append(logit)
        labels.append(int((reference if is_acceptance else reviewed) == Label.PNEUMONIA))
        raw_weights.append(1.0 if is_acceptance else inverse_probability(sampled_at))
        sources.append(ACCEPTANCE if is_acceptance else VERIFICATION)
    return GroundTruth(
        study_ids=tuple(ids),
        logits=np.asarray(logits, dtype=np.float64),
        labels=np.asarray(labels, dtype=np.int64),
        weights=_scaled(np.asarray(raw_weights, dtype=np.float64), np.asarray(sources)),
        sources=np.asarray(sources, dtype=object),
    )


def inverse_probability(chance: float | None) -> float:
    """A sampled study's Horvitz-Thompson weight: 1 / its sampling probability (none recorded: 1)."""
    return 1.0 / max(float(chance or 1.0), 1e-6)


def _scaled(weights: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """The verification sample's inverse probabilities scaled to sum to its size; the acceptance set's stay 1."""
    out = weights.copy()
    sampled = sources == VERIFICATION
    if sampled.any():
        out[sampled] *= sampled.sum() / out[sampled].sum()
    return out
