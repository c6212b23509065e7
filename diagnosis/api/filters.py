from datetime import UTC, datetime
from typing import Any

import django_filters
from django.db.models import QuerySet

from diagnosis.filters import HistoryFilter


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """ISO 8601 with any offset Python accepts (up to +-24 h) is compared in UTC, which every database
    can store; PostgreSQL refuses offsets past 16 h, so passing them through would be a server error."""

    def filter(self, qs: QuerySet[Any], value: datetime | None) -> QuerySet[Any]:
        if value is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError:  # within a day of year 1 or 9999
                value = (datetime.min if value.year < 5000 else datetime.max).replace(tzinfo=UTC)
        return super().filter(qs, value)


class StudyFilter(HistoryFilter):
    """The API's list: the history's filters, plus the batch and the submission time."""

    batch = django_filters.UUIDFilter(field_name="batch_id")
    created_after = UtcDateTimeFilter(field_name="created", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created", lookup_expr="lt")
