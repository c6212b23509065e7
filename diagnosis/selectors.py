"""All reads of studies, always scoped to the requesting user: another user's id is simply not found."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from diagnosis.models import FINAL_STATUSES, Batch, JobStatus, Study

AnyUser = User | AnonymousUser


def studies_for(user: AnyUser) -> QuerySet[Study]:
    if not user.is_authenticated:
        return Study.objects.none()
    return Study.objects.filter(owner=user).select_related("job", "result")


def get_study(user: AnyUser, study_id: uuid.UUID | str) -> Study:
    """The user's own study, or Http404 (also for another user's id or a malformed id)."""
    try:
        return studies_for(user).get(pk=study_id)
    except (Study.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such study.") from exc


def history(user: AnyUser, label: str = "", status: str = "") -> QuerySet[Study]:
    """The user's studies, newest first, optionally filtered by result label and job status."""
    qs = studies_for(user).order_by("-created")
    if label:
        qs = qs.filter(result__label=label)
    if status:
        qs = qs.filter(job__status=status)
    return qs


def get_batch(user: AnyUser, batch_id: uuid.UUID | str) -> Batch:
    if not user.is_authenticated:
        raise Http404("No such batch.")
    try:
        return Batch.objects.get(pk=batch_id, owner=user)
    except (Batch.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such batch.") from exc


def batch_progress(batch: Batch) -> dict[str, object]:
    """Counts of the batch's studies by job status, the finished fraction and the study ids."""
    rows = batch.studies.values_list("id", "job__status")
    counts = {status: 0 for status in JobStatus.values}
    for _, status in rows:
        counts[status] += 1
    total = len(rows)
    final = sum(counts[s] for s in FINAL_STATUSES)
    return {
        "total": total,
        "counts": counts,
        "progress": final / total if total else 1.0,
        "studies": [str(pk) for pk, _ in rows],
    }
