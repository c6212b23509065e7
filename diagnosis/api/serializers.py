from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from diagnosis.models import (
    MAX_AGE_YEARS,
    NOTE_MAX_LENGTH,
    PATIENT_REF_MAX_LENGTH,
    JobStatus,
    Label,
    Projection,
    Review,
    Sex,
    Study,
    printable,
)
from diagnosis.study_details import StudyDetails, details_from
from diagnosis.viewing import FileKind


class ReviewSerializer(serializers.ModelSerializer[Review]):
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = Review
        fields = ["reviewer", "agrees", "final_label", "note", "updated"]
        read_only_fields = fields


class StudySerializer(serializers.ModelSerializer[Study]):
    status = serializers.ChoiceField(source="job.status", choices=JobStatus.choices, read_only=True)
    sex = serializers.ChoiceField(choices=Sex.choices, allow_blank=True, read_only=True)  # "": not given
    projection = serializers.ChoiceField(choices=Projection.choices, allow_blank=True, read_only=True)
    # A study without a result yet gives null: DRF returns None when `result` does not exist.
    label = serializers.ChoiceField(  # type: ignore[assignment]  # a field, not Field.label
        source="result.label", choices=Label.choices, read_only=True, allow_null=True
    )
    probability = serializers.FloatField(
        source="result.probability",
        read_only=True,
        allow_null=True,
        help_text=(
            "The probability of pneumonia (calibrated, 0-1), whatever the label: a NORMAL call at 0.66 is 66 % "
            "probability of pneumonia, not 66 % confidence in normal. null before a result."
        ),
    )
    threshold = serializers.FloatField(
        source="result.threshold",
        read_only=True,
        allow_null=True,
        help_text="The threshold on the probability of pneumonia: PNEUMONIA at or above it, NORMAL below.",
    )
    model_version = serializers.CharField(source="result.model_version", read_only=True, allow_null=True)
    runtime = serializers.CharField(
        source="result.runtime",
        read_only=True,
        allow_null=True,
        help_text='What ran the model: "litert", "tensorflow" or "jax" (INFERENCE_RUNTIME); "" before it was kept.',
    )
    operating_point = serializers.IntegerField(
        source="result.operating_point.version",
        read_only=True,
        allow_null=True,
        help_text="The version of this clinic's own operating point the call was made at; null: the model card's.",
    )
    site_validated = serializers.SerializerMethodField(
        help_text=(
            "false: the call used the model card's threshold and probability, not yet validated at this site "
            "(no operating point adopted for this model version); null before a result."
        )
    )
    acceptance = serializers.BooleanField(read_only=True, help_text="An acceptance-set study (labelled by an admin)")
    reference_label = serializers.ChoiceField(choices=Label.choices, allow_blank=True, read_only=True)
    error = serializers.SerializerMethodField()
    completed = serializers.DateTimeField(source="job.finished_at", read_only=True, allow_null=True)
    file_name = serializers.CharField(source="original_name", read_only=True)
    url = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()
    heatmap_url = serializers.SerializerMethodField()
    overlay_url = serializers.SerializerMethodField()
    review = ReviewSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Study
        fields = [
            "id",
            "status",
            "label",
            "probability",
            "threshold",
            "model_version",
            "runtime",
            "operating_point",
            "site_validated",
            "acceptance",
            "reference_label",
            "error",
            "created",
            "completed",
            "file_name",
            "batch",
            "width",
            "height",
            "sha256",
            "url",
            "image_url",
            "heatmap_url",
            "overlay_url",
            "patient_ref",
            "age_years",
            "sex",
            "projection",
            "clinical_note",
            "review",
        ]
        read_only_fields = fields

    def _result(self, study: Study) -> Any:
        return getattr(study, "result", None)

    def _abs(self, name: str, study: Study, **kwargs: Any) -> str:
        return self.context["request"].build_absolute_uri(reverse(name, kwargs={"pk": study.pk, **kwargs}))

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_site_validated(self, study: Study) -> bool | None:
        result = self._result(study)
        return None if result is None else result.operating_point_id is not None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, study: Study) -> str | None:
        return study.job.reason or None

    def get_url(self, study: Study) -> str:
        return self._abs("api:study-detail", study)

    def get_image_url(self, study: Study) -> str:
        return self._abs("api:study-file", study, kind=FileKind.IMAGE)

    def _result_file(self, study: Study, kind: FileKind) -> str | None:
        return self._abs("api:study-file", study, kind=kind) if self._result(study) else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_heatmap_url(self, study: Study) -> str | None:
        return self._result_file(study, FileKind.HEATMAP)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_overlay_url(self, study: Study) -> str | None:
        return self._result_file(study, FileKind.OVERLAY)


class OptionalIntegerField(serializers.IntegerField):
    """An empty value means "not given", as on the upload form (a multipart field cannot send null)."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        return super().validate_empty_values(None if data == "" else data)


class SubmitSerializer(serializers.Serializer[Any]):
    """Files, or one zip; optional patient details apply to every study of the request.

    An empty file is accepted here and refused by the upload gate with the others, per file: one bad file never
    fails the rest of the request."""

    images = serializers.ListField(child=serializers.FileField(allow_empty_file=True), required=False, allow_empty=True)
    archive = serializers.FileField(required=False, allow_empty_file=True)
    patient_ref = serializers.CharField(
        max_length=PATIENT_REF_MAX_LENGTH, required=False, allow_blank=True, default="", validators=[printable]
    )
    age_years = OptionalIntegerField(
        min_value=0, max_value=MAX_AGE_YEARS, required=False, allow_null=True, default=None
    )
    sex = serializers.ChoiceField(choices=Sex.choices, required=False, allow_blank=True, default="")
    projection = serializers.ChoiceField(choices=Projection.choices, required=False, allow_blank=True, default="")
    clinical_note = serializers.CharField(
        max_length=NOTE_MAX_LENGTH, required=False, allow_blank=True, default="", validators=[printable]
    )
    reference_label = serializers.ChoiceField(
        choices=Label.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text=(
            "A clinic admin's acceptance set: the true label of every file of the request (a zip may carry "
            "labels.csv instead: file name,label). Labelled studies are judged like any other, kept out of the "
            "clinical worklist, history counts and dashboard rates, and measure the model at this site "
            "(GET /api/v1/site/performance/). 403 for anyone but a clinic admin."
        ),
    )

    def details(self) -> StudyDetails:
        return details_from(self.validated_data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("images") and not attrs.get("archive"):
            raise serializers.ValidationError(_("Send one or more files in 'images', or one zip file in 'archive'."))
        if attrs.get("images") and attrs.get("archive"):
            raise serializers.ValidationError(_("Send either 'images' or 'archive', not both."))
        return attrs


class ReviewInputSerializer(serializers.Serializer[Any]):
    """With two labels, disagreeing makes the other label the final one."""

    decision = serializers.ChoiceField(choices=["agree", "disagree"])
    note = serializers.CharField(
        max_length=NOTE_MAX_LENGTH, required=False, allow_blank=True, default="", validators=[printable]
    )
    based_on = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text=(
            "The reading you saw: the study's review.updated as you read it, or null if it had none. If the "
            "reading changed since, nothing is saved and the answer is 409 with the reading now. Left out: the "
            "last save wins."
        ),
    )


class SubmittedStudySerializer(serializers.ModelSerializer[Study]):
    """Just the URL, not the whole study: serialising that would query its result once per file."""

    status = serializers.CharField(source="job.status", read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:study-detail")
    file_name = serializers.CharField(source="original_name", read_only=True)

    class Meta:
        model = Study
        fields = ["id", "status", "url", "file_name"]
        read_only_fields = fields


class ReviewConflictSerializer(serializers.Serializer[Any]):
    """409: the study cannot be reviewed (not judged yet), or its reading changed since based_on."""

    detail = serializers.CharField()
    review = ReviewSerializer(allow_null=True, help_text="The reading now (null: none)")


class SubmitErrorSerializer(serializers.Serializer[Any]):
    """An intake.UploadError: the file's name and why it was refused."""

    file_name = serializers.CharField()
    error = serializers.CharField(source="message")


class SubmitResponseSerializer(serializers.Serializer[Any]):
    """The answer to a submission: built from the Batch and the intake.Submission (context: the request)."""

    batch = serializers.UUIDField(source="batch.pk")
    studies = SubmittedStudySerializer(many=True)
    errors = SubmitErrorSerializer(many=True)  # type: ignore[assignment]  # a field, not Serializer.errors


class BatchSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    created = serializers.DateTimeField()
    total = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    progress = serializers.FloatField()
    studies = serializers.ListField(child=serializers.UUIDField())
