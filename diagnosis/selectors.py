"""All reads of studies, always scoped to the requesting user: another user's id is simply not found."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from diagnosis.models import Study

User = AbstractBaseUser | AnonymousUser


def studies_for(user: User) -> QuerySet[Study]:
    if not user.is_authenticated:
        return Study.objects.none()
    return Study.objects.filter(owner=user).select_related("job", "result")


def get_study(user: User, study_id: uuid.UUID | str) -> Study:
    """The user's own study, or Http404 (also for another user's id or a malformed id)."""
    try:
        return studies_for(user).get(pk=study_id)
    except (Study.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such study.") from exc


def history(user: User, label: str = "", status: str = "") -> QuerySet[Study]:
    """The user's studies, newest first, optionally filtered by result label and job status."""
    qs = studies_for(user).order_by("-created")
    if label:
        qs = qs.filter(result__label=label)
    if status:
        qs = qs.filter(job__status=status)
    return qs
