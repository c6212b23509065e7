"""Reviews: a clinic reviewer records (or revises) their reading of a study the model has judged."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from celery import current_app
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from pydicom.uid import generate_uid

from diagnosis import audit
from diagnosis.access import require_membership
from diagnosis.audit import NO_ORIGIN, Origin
from diagnosis.models import AuditAction, Label, ResultSend, Review, ReviewSend, Role, Study
from diagnosis.task_names import SEND_REVIEW


class ReviewError(Exception):
    """The study cannot be reviewed (the model has not judged it)."""


class ReviewConflict(ReviewError):
    """The study's reading changed after the reviewer read it: nothing was saved. current: the reading now."""

    def __init__(self, current: Review | None) -> None:
        if current is None:
            text = gettext("The reading of this study was removed since you opened it, and yours was not saved.")
        else:
            when = timezone.localtime(current.updated).strftime("%Y-%m-%d %H:%M")
            text = gettext(
                "%(reviewer)s saved a reading of this study (%(label)s) at %(when)s, after you opened it, and yours "
                "was not saved."
            ) % {"reviewer": current.reviewer.get_username(), "label": current.get_final_label_display(), "when": when}
        super().__init__(f"{text} {gettext('Read it, then save again to replace it.')}")
        self.current = current


class Unchecked(Enum):
    """review_study's based_on when the caller did not say which reading it saw: the last save wins."""

    ANY = "any"


def review_study(
    reviewer: User,
    study: Study,
    *,
    agrees: bool,
    note: str,
    origin: Origin = NO_ORIGIN,
    based_on: datetime | Unchecked | None = Unchecked.ANY,
) -> Review:
    """Record (or revise) the clinic reviewer's reading. With two labels, disagreeing means the other one.

    based_on: the reading the reviewer saw, by its `updated` time (None: the study was not reviewed yet). If the
    reading changed since, ReviewConflict, and nothing is saved: a colleague's reading is never replaced unseen."""
    require_membership(reviewer, Role.REVIEWER)
    note = note.replace("\r\n", "\n").strip()  # as the page, the API and the PACS will all show it
    result = getattr(study, "result", None)
    if result is None:
        raise ReviewError(gettext("Only a study the model has judged can be reviewed."))
    final = result.label if agrees else Label.other(result.label)
    with transaction.atomic():
        # The study row is locked (a review may not exist yet to lock), so that two reviewers saving at once
        # are serialised and each audits the review they actually replaced.
        Study.objects.select_for_update().filter(pk=study.pk).values_list("pk", flat=True).first()
        current = Review.objects.filter(study=study).select_related("reviewer").first()
        if based_on is not Unchecked.ANY and (current.updated if current else None) != based_on:
            raise ReviewConflict(current)
        previous = (
            {"final_label": current.final_label, "reviewer__username": current.reviewer.username, "note": current.note}
            if current
            else None
        )
        review, _ = Review.objects.update_or_create(
            study=study, defaults={"reviewer": reviewer, "agrees": agrees, "final_label": final, "note": note}
        )
        detail = {
            "model_label": result.label,
            "final_label": final,
            "agrees": agrees,
            "note": note,
            "previous": previous,
        }
        audit.record(reviewer, AuditAction.REVIEW, study, detail, origin=origin)
        _schedule_send(review)
    study.review = review
    return review


def _schedule_send(review: Review) -> None:
    """A study whose results go back to a PACS (it has a ResultSend): the reading follows them as a verified SR
    (diagnosis.pacs.send_review, on the maintenance queue, once this commits; the sweeper re-drives it)."""
    if not ResultSend.objects.filter(study_id=review.study_id).exists():
        return
    user = review.reviewer
    reading = {
        "final_label": review.final_label,
        "agrees": review.agrees,
        "reviewer_name": (f"{user.last_name}^{user.first_name}" if user.last_name else f"{user.get_username()}^")[:150],
        "note": review.note,
    }
    last = ReviewSend.objects.filter(study_id=review.study_id).values(*reading).last()
    if last == reading:  # saved again unchanged: the PACS already has this reading (a changed note is a new SR)
        return
    row = ReviewSend.objects.create(study_id=review.study_id, sr_uid=generate_uid(), **reading)
    transaction.on_commit(lambda: current_app.send_task(SEND_REVIEW, args=[row.pk]), robust=True)
