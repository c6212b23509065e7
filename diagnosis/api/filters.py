import django_filters

from diagnosis.models import JobStatus, Label, Study


class StudyFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(field_name="job__status", choices=JobStatus.choices)
    label = django_filters.ChoiceFilter(field_name="result__label", choices=Label.choices)
    batch = django_filters.UUIDFilter(field_name="batch_id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="lt")

    class Meta:
        model = Study
        fields = ["status", "label", "batch", "created_after", "created_before"]
