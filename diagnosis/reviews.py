"""Reviews: a clinic reviewer records (or revises) their reading of a study the model has judged."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from diagnosis import audit
from diagnosis.access import require_membership
from diagnosis.audit import NO_ORIGIN, Origin
from diagnosis.models import AuditAction, Label, Review, Role, Study


class ReviewError(Exception):
    """The study cannot be reviewed (the model has not judged it)."""


def review_study(reviewer: User, study: Study, agrees: bool, note: str, origin: Origin = NO_ORIGIN) -> Review:
    """Record (or revise) the clinic reviewer's reading. With two labels, disagreeing means the other one."""
    require_membership(reviewer, Role.REVIEWER)
    result = getattr(study, "result", None)
    if result is None:
        raise ReviewError("Only a study the model has judged can be reviewed.")
    final = result.label if agrees else Label.other(result.label)
    with transaction.atomic():
        # The study row is locked (a review may not exist yet to lock), so that two reviewers saving at once
        # are serialised and each audits the review they actually replaced.
        Study.objects.select_for_update().filter(pk=study.pk).values_list("pk", flat=True).first()
        previous = Review.objects.filter(study=study).values("final_label", "reviewer__username").first()
        review, _ = Review.objects.update_or_create(
            study=study, defaults={"reviewer": reviewer, "agrees": agrees, "final_label": final, "note": note}
        )
        detail = {"model_label": result.label, "final_label": final, "agrees": agrees, "previous": previous}
        audit.record(reviewer, AuditAction.REVIEW, study, detail, origin)
    study.review = review
    return review
