"""The verification sample: a random share of each call (NORMAL and PNEUMONIA apart), drawn when a result is
recorded and stored with its sampling probability, marked for reviewers at the top of the worklist. Reviews of
these studies are the unbiased local ground truth after go-live (diagnosis.site.ground_truth)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from django.conf import settings

from diagnosis.models import InferenceJob, Label, Result, SiteSettings

_random = random.SystemRandom()


def rates(clinic_ids: Iterable[int]) -> dict[int, dict[str, float]]:
    """Each clinic's sampling probability per call: its site settings, else VERIFICATION_SAMPLE_RATE."""
    default = float(settings.VERIFICATION_SAMPLE_RATE)
    out: dict[int, dict[str, float]] = {cid: {Label.NORMAL: default, Label.PNEUMONIA: default} for cid in clinic_ids}
    for row in SiteSettings.objects.filter(clinic_id__in=list(out)):
        if row.verification_rate_normal is not None:
            out[row.clinic_id][Label.NORMAL] = row.verification_rate_normal
        if row.verification_rate_pneumonia is not None:
            out[row.clinic_id][Label.PNEUMONIA] = row.verification_rate_pneumonia
    return out


def draw(outcomes: Sequence[tuple[InferenceJob, Result]], uniform: Iterable[float] | None = None) -> None:
    """Mark each unsaved result of a clinical study as sampled or not, with its sampling probability (acceptance
    studies are labelled already and are never sampled). uniform: the random numbers in [0, 1) to use (tests)."""
    clinical = [(job, result) for job, result in outcomes if not job.study.acceptance]
    by_clinic = rates({job.study.clinic_id for job, _ in clinical})
    numbers = iter(uniform) if uniform is not None else None
    for job, result in clinical:
        chance = by_clinic[job.study.clinic_id][result.label]
        u = next(numbers) if numbers is not None else _random.random()
        result.sampling_probability = chance
        result.verification_sample = u < chance
