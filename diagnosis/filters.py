"""Filters of the study lists (history, worklist, the API's list) and of the audit trail.

django-filter builds the forms and the queries. The study lists share one declaration of the filters they have
in common (StudyFilter, HistoryFilter); each list adds its own.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.contrib.auth.models import User
from django.db.models import F, OrderBy, Q, QuerySet
from django.utils.functional import Promise, lazy
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from diagnosis.models import AuditAction, AuditEvent, JobStatus, Label, Study
from diagnosis.models.studies import fold

YES_NO = [("no", _("No")), ("yes", _("Yes"))]
# Dates are written YYYY-MM-DD like every date the pages show: a browser's date input shows the browser's locale
# instead (mm/dd/yyyy in an English Chromium).
DATE = forms.DateInput(
    format="%Y-%m-%d",
    attrs={"placeholder": "YYYY-MM-DD", "pattern": r"\d{4}-\d{2}-\d{2}", "inputmode": "numeric", "size": 10,
           "title": _("A date as YYYY-MM-DD")},
)  # fmt: skip


def people_matching(users: QuerySet[User], text: str) -> list[int]:
    """The ids of `users` whose username or full name contains `text`, both folded (case, accents, đ): "dang"
    finds Đặng. Folded in Python: a clinic's people are few, and SQLite folds ASCII only."""
    wanted = fold(text.strip())
    rows = users.values_list("pk", "username", "first_name", "last_name")
    return [pk for pk, *names in rows if wanted in fold(" ".join(names))]


def found(text: str) -> Q:
    """A study whose patient reference, file name or note contains `text`, folded (Study.search_folded)."""
    return Q(search_folded__contains=fold(text.strip()))


class StudyFilter(django_filters.FilterSet):
    """The model's label: every list of studies filters by it."""

    label = django_filters.ChoiceFilter(
        field_name="result__label", choices=Label.choices, empty_label=_("Any label"), label=_("Model label")
    )

    class Meta:
        model = Study
        fields: list[str] = []


# The columns a list can be sorted by (?sort=probability, ?sort=-created, ...).
SORTS = (("result__probability", "probability"), ("created", "created"), ("patient_ref", "patient"))
SORT_LABELS = {
    "result__probability": _("P(pneumonia)"),
    "created": _("Upload time"),
    "patient_ref": _("Patient reference"),
}


def _descending(label: Promise | str) -> str:
    return gettext(Sort.descending_fmt) % label


class Sort(django_filters.OrderingFilter):
    """Sorting by a column, in either direction, with the studies that have no value (no result: rejected, failed
    or not judged yet) last either way, then the newest first among equals."""

    # Our own message (django-filter's catalog has no Vietnamese); the choices are built once, when the list's
    # filter class is declared, so each descending label stays lazy and is worded in the request's language.
    descending_fmt = gettext_noop("%s (descending)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, fields=SORTS, field_labels=SORT_LABELS, label=_("Sort by"), **kwargs)

    def build_choices(self, fields: dict[str, str], labels: dict[str, Any]) -> list[tuple[str, Any]]:
        choices: list[tuple[str, Any]] = []
        for field, param in fields.items():
            label = labels.get(field, param)
            choices += [(param, label), (f"-{param}", labels.get(f"-{param}", lazy(_descending, str)(label)))]
        return choices

    def get_ordering_value(self, param: str) -> OrderBy:
        descending = param.startswith("-")
        field = F(self.param_map.get(param.lstrip("-"), param.lstrip("-")))
        return field.desc(nulls_last=True) if descending else field.asc(nulls_last=True)

    def filter(self, qs: QuerySet[Study], value: Any) -> QuerySet[Study]:
        sorted_qs = super().filter(qs, value)
        return sorted_qs.order_by(*sorted_qs.query.order_by, "-created") if value else sorted_qs


class HistoryFilter(StudyFilter):
    """A user's own studies (the history page and the API's list): by label and by job status. Clinical studies
    only, unless acceptance=yes asks for the acceptance set (a clinic admin's labelled studies) instead."""

    status = django_filters.ChoiceFilter(
        field_name="job__status", choices=JobStatus.choices, empty_label=_("Any status"), label=_("Status")
    )
    acceptance = django_filters.ChoiceFilter(
        choices=YES_NO, method="keep", empty_label=_("Clinical studies"), label=_("Acceptance set")
    )

    def keep(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        return qs  # applied in filter_queryset, also when the filter is not given

    def filter_queryset(self, queryset: QuerySet[Study]) -> QuerySet[Study]:
        wanted = self.form.cleaned_data.get("acceptance") == "yes"
        return super().filter_queryset(queryset).filter(acceptance=wanted)


class HistoryPageFilter(HistoryFilter):
    """The history page adds a search by patient reference or file name, and sorting by column."""

    q = django_filters.CharFilter(method="search", label=_("Patient, file or note"))
    sort = Sort(empty_label=_("Newest first"))

    def search(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        return qs.filter(found(value))


class WorklistFilter(StudyFilter):
    q = django_filters.CharFilter(method="search", label=_("Search"))
    created_from = django_filters.DateFilter(
        field_name="created", lookup_expr="date__gte", label=_("From"), widget=DATE
    )
    created_to = django_filters.DateFilter(field_name="created", lookup_expr="date__lte", label=_("To"), widget=DATE)
    reviewed = django_filters.ChoiceFilter(
        method="filter_reviewed", choices=YES_NO, empty_label=_("Any"), label=_("Reviewed")
    )
    disagreement = django_filters.ChoiceFilter(
        method="filter_disagreement", choices=YES_NO, empty_label=_("Any"), label=_("Reviewer disagrees")
    )
    patient_ref = django_filters.CharFilter(
        field_name="patient_ref", lookup_expr="iexact", label=_("Patient reference")
    )
    sort = Sort(empty_label=_("To verify, then likeliest pneumonia"))

    def search(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        """File name, patient reference, clinical note or uploader (username or full name), folded."""
        uploaders = User.objects.filter(pk__in=qs.values("owner_id"))
        return qs.filter(found(value) | Q(owner_id__in=people_matching(uploaders, value)))

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
    action = django_filters.ChoiceFilter(choices=AuditAction.choices, empty_label=_("Any action"), label=_("Action"))
    username = django_filters.CharFilter(method="filter_person", label=_("User (name or part of it)"))
    at_from = django_filters.DateFilter(field_name="at", lookup_expr="date__gte", label=_("From"), widget=DATE)
    at_to = django_filters.DateFilter(field_name="at", lookup_expr="date__lte", label=_("To"), widget=DATE)
    target_id = django_filters.CharFilter(label=_("Object id"))
    # Thumbnails are loaded by the pages that list studies: by default they are folded into those pages' views
    # rather than listed one line each (a worklist page alone loads 25).
    thumbnails = django_filters.ChoiceFilter(
        method="keep", choices=[("listed", _("Listed"))], empty_label=_("Collapsed"), label=_("Thumbnail loads")
    )

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def keep(self, qs: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        return qs

    def filter_person(self, qs: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        """Part of a username or full name, folded; or part of the name a failed login typed."""
        people = User.objects.filter(pk__in=qs.values("user_id"))
        return qs.filter(Q(user_id__in=people_matching(people, value)) | Q(username__icontains=value.strip()))

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
