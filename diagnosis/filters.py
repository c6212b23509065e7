"""Filters of the worklist and the audit trail pages (django-filter builds the forms and the queries)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from diagnosis.models import AuditAction, AuditEvent, Label, Study

YES_NO = [("no", "No"), ("yes", "Yes")]
DATE = forms.DateInput(attrs={"type": "date"})


class WorklistFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    created_from = django_filters.DateFilter(field_name="created", lookup_expr="date__gte", label="From", widget=DATE)
    created_to = django_filters.DateFilter(field_name="created", lookup_expr="date__lte", label="To", widget=DATE)
    label = django_filters.ChoiceFilter(
        field_name="result__label", choices=Label.choices, empty_label="Any label", label="Model label"
    )
    reviewed = django_filters.ChoiceFilter(
        method="filter_reviewed", choices=YES_NO, empty_label="Any", label="Reviewed"
    )
    disagreement = django_filters.ChoiceFilter(
        method="filter_disagreement", choices=YES_NO, empty_label="Any", label="Reviewer disagrees"
    )
    patient_ref = django_filters.CharFilter(field_name="patient_ref", lookup_expr="iexact", label="Patient reference")

    class Meta:
        model = Study
        fields: list[str] = []

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

    class Meta:
        model = AuditEvent
        fields: list[str] = []
