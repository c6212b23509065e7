"""Filters of the study lists (history, worklist, the API's list) and of the audit trail.

django-filter builds the forms and the queries. The study lists share one declaration of the filters they have
in common (StudyFilter, HistoryFilter); each list adds its own.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from diagnosis.models import AuditAction, AuditEvent, JobStatus, Label, Study

YES_NO = [("no", "No"), ("yes", "Yes")]
DATE = forms.DateInput(attrs={"type": "date"})


class StudyFilter(django_filters.FilterSet):
    """The model's label: every list of studies filters by it."""

    label = django_filters.ChoiceFilter(
        field_name="result__label", choices=Label.choices, empty_label="Any label", label="Model label"
    )

    class Meta:
        model = Study
        fields: list[str] = []


# The columns a list can be sorted by (?sort=probability, ?sort=-created, ...).
SORTS = (("result__probability", "probability"), ("created", "created"), ("patient_ref", "patient"))


class HistoryFilter(StudyFilter):
    """A user's own studies (the history page and the API's list): by label and by job status. Clinical studies
    only, unless acceptance=yes asks for the acceptance set (a clinic admin's labelled studies) instead."""

    status = django_filters.ChoiceFilter(
        field_name="job__status", choices=JobStatus.choices, empty_label="Any status", label="Status"
    )
    acceptance = django_filters.ChoiceFilter(
        choices=YES_NO, method="keep", empty_label="Clinical studies", label="Acceptance set"
    )

    def keep(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        return qs  # applied in filter_queryset, also when the filter is not given

    def filter_queryset(self, queryset: QuerySet[Study]) -> QuerySet[Study]:
        wanted = self.form.cleaned_data.get("acceptance") == "yes"
        return super().filter_queryset(queryset).filter(acceptance=wanted)


class HistoryPageFilter(HistoryFilter):
    """The history page adds a search by patient reference or file name, and sorting by column."""

    q = django_filters.CharFilter(method="search", label="Patient or file")
    sort = django_filters.OrderingFilter(fields=SORTS, label="Sort by")

    def search(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        return qs.filter(Q(original_name__icontains=value) | Q(patient_ref__icontains=value))


class WorklistFilter(StudyFilter):
    q = django_filters.CharFilter(method="search", label="Search")
    created_from = django_filters.DateFilter(field_name="created", lookup_expr="date__gte", label="From", widget=DATE)
    created_to = django_filters.DateFilter(field_name="created", lookup_expr="date__lte", label="To", widget=DATE)
    reviewed = django_filters.ChoiceFilter(
        method="filter_reviewed", choices=YES_NO, empty_label="Any", label="Reviewed"
    )
    disagreement = django_filters.ChoiceFilter(
        method="filter_disagreement", choices=YES_NO, empty_label="Any", label="Reviewer disagrees"
    )
    patient_ref = django_filters.CharFilter(field_name="patient_ref", lookup_expr="iexact", label="Patient reference")
    sort = django_filters.OrderingFilter(fields=SORTS, label="Sort by")

    def search(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        """File name, patient reference, clinical note or uploader."""
        return qs.filter(
            Q(original_name__icontains=value)
            | Q(patient_ref__icontains=value)
            | Q(clinical_note__icontains=value)
            | Q(owner__username__icontains=value)
        )

    def filter_reviewed(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        return qs.filter(review__isnull=value != "yes")

    def filter_disagreement(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        return qs.filter(review__agrees=False) if value == "yes" else qs.exclude(review__agrees=False)


def worklist_params(query: Any) -> dict[str, Any]:
    """The worklist shows unreviewed studies unless the user asks otherwise."""
    params = query.copy()
    if "reviewed" not in params:
        params["reviewed"] = "no"
    return params


class AuditFilter(django_filters.FilterSet):
    action = django_filters.ChoiceFilter(choices=AuditAction.choices, empty_label="Any action")
    username = django_filters.CharFilter(lookup_expr="iexact", label="User")
    at_from = django_filters.DateFilter(field_name="at", lookup_expr="date__gte", label="From", widget=DATE)
    at_to = django_filters.DateFilter(field_name="at", lookup_expr="date__lte", label="To", widget=DATE)
    target_id = django_filters.CharFilter(label="Object id")
    # Thumbnails are loaded by the pages that list studies: by default they are folded into those pages' views
    # rather than listed one line each (a worklist page alone loads 25).
    thumbnails = django_filters.ChoiceFilter(
        method="keep", choices=[("listed", "Listed")], empty_label="Collapsed", label="Thumbnail loads"
    )

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def keep(self, qs: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        return qs

    @property
    def thumbnails_listed(self) -> bool:
        return self.form.is_valid() and self.form.cleaned_data.get("thumbnails") == "listed"

    def filter_queryset(self, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        qs = super().filter_queryset(queryset)
        return qs if self.thumbnails_listed else qs.exclude(THUMBNAIL_LOADS)

    def thumbnail_loads(self) -> int:
        """How many thumbnail loads the collapsed list leaves out (0 when they are listed)."""
        if self.thumbnails_listed:
            return 0
        return super().filter_queryset(self.queryset).filter(THUMBNAIL_LOADS).count()


THUMBNAIL_LOADS = Q(action=AuditAction.VIEW_FILE, detail__file="thumbnail")
