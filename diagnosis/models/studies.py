"""Studies, their inference jobs, results and reviews. The database is the record; Redis only carries job ids."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterable
from typing import Any, cast

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from diagnosis.models.clinics import Batch, Clinic
from diagnosis.models.common import (
    NOTE_MAX_LENGTH,
    PATIENT_REF_MAX_LENGTH,
    derived_path,
    original_path,
)
from worker.ml.spec import LABELS


class Label(models.TextChoices):
    """The model's labels. The declaration is worker.ml.spec.LABELS; the names here exist for queries
    (Label.PNEUMONIA) and must match it, which is checked when this module loads."""

    NORMAL = "NORMAL", _("Normal")
    PNEUMONIA = "PNEUMONIA", _("Pneumonia")

    @classmethod
    def other(cls, label: str) -> Label:
        """With two labels, the one a reviewer means by disagreeing with `label`."""
        return next(cls(value) for value in cls.values if value != label)


if tuple(Label.values) != LABELS:
    raise ImportError(f"diagnosis.models.Label {Label.values} differs from worker.ml.spec.LABELS {LABELS}")


class Sex(models.TextChoices):
    FEMALE = "F", _("Female")
    MALE = "M", _("Male")
    OTHER = "O", _("Other")


class Projection(models.TextChoices):
    PA = "PA", "PA"
    AP = "AP", "AP"


# Letters NFKD leaves whole (a letter of its own, not a base letter plus a mark): the Vietnamese and Icelandic d
# (U+0111, U+00F0), the slashed o, the Polish l, the Maltese h, the dotless i, the barred t, and the ligatures
# ae, oe and thorn. Written as escapes: several look like their Latin base letter.
_UNDECOMPOSED = str.maketrans(
    {"\u0111": "d", "\u00f0": "d", "\u00f8": "o", "\u0142": "l", "\u0127": "h", "\u0131": "i", "\u0167": "t"}
    | {"\u00e6": "ae", "\u0153": "oe", "\u00fe": "th"}
)


def fold(text: str) -> str:
    """The text as search compares it: case folded (Unicode's, not only ASCII's), compatibility forms made plain
    (NFKD), accents dropped, and the letters that carry no separate accent mapped to their base ("Đặng" is "dang",
    "BATCH-Ü-7" is "batch-u-7")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).translate(_UNDECOMPOSED)


def search_text(patient_ref: str, original_name: str, clinical_note: str) -> str:
    """What a study is found by: its patient reference, file name and note, folded, one a line."""
    return "\n".join(fold(part) for part in (patient_ref, original_name, clinical_note))


class StudyQuerySet(models.QuerySet["Study"]):
    def bulk_create(self, objs: Iterable[Study], *args: Any, **kwargs: Any) -> list[Study]:  # type: ignore[override]
        """Intake stores studies in bulk, past save(): their search text is set here too."""
        studies = list(objs)
        for study in studies:
            study.refold()
        return cast(list[Study], super().bulk_create(studies, *args, **kwargs))  # type: ignore[arg-type]


class Study(models.Model):
    """One uploaded radiograph. The id is a random UUID, so no URL of a study can be guessed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="studies")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="studies")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="studies")
    image = models.FileField(upload_to=original_path, max_length=255)
    preview = models.FileField(upload_to=derived_path, max_length=255)
    thumbnail = models.FileField(upload_to=derived_path, max_length=255)
    # What the worker judges from instead of decoding the original again (worker.ml.working): the grey levels at the
    # model's input size, and the colour the gate reads. Empty for studies stored before: their original is decoded.
    model_copy = models.FileField(upload_to=derived_path, max_length=255, blank=True)
    chroma = models.FloatField(null=True, blank=True)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=50)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    # Optional, pseudonymous details given at upload: never a name, only the clinic's own reference.
    patient_ref = models.CharField(_("patient reference"), max_length=PATIENT_REF_MAX_LENGTH, blank=True, db_index=True)
    age_years = models.PositiveSmallIntegerField(_("age (years)"), null=True, blank=True)
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True)
    projection = models.CharField(max_length=2, choices=Projection.choices, blank=True)
    clinical_note = models.TextField(max_length=NOTE_MAX_LENGTH, blank=True)
    # Acceptance testing (diagnosis.site): a labelled radiograph a clinic admin submitted to measure the model at
    # this site. Judged like any other; kept out of the clinical worklist, history counts and dashboard rates.
    acceptance = models.BooleanField(default=False, db_index=True)
    reference_label = models.CharField(max_length=10, choices=Label.choices, blank=True)
    # search_text() of the reference, file name and note, kept in step on save and bulk_create: SQLite folds the
    # case of ASCII letters only and PostgreSQL's unaccent needs an extension, so search compares this instead.
    search_folded = models.TextField(blank=True, default="", editable=False)

    objects = StudyQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return f"{self.original_name} ({self.id})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.refold()
        fields = kwargs.get("update_fields")
        if fields is not None and {"patient_ref", "original_name", "clinical_note"} & set(fields):
            kwargs["update_fields"] = {*fields, "search_folded"}
        super().save(*args, **kwargs)

    def refold(self) -> None:
        self.search_folded = search_text(self.patient_ref, self.original_name, self.clinical_note)


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    REJECTED = "rejected", _("Rejected")


FINAL_STATUSES = (JobStatus.DONE, JobStatus.FAILED, JobStatus.REJECTED)


class JobPriority(models.IntegerChoices):
    """Which queued job a worker takes first: a study someone waits for at the screen (a page upload, a
    single-study API call, a DICOM instance) before bulk work, so that no one at a screen waits behind a batch;
    bulk work round-robin between clinics, so that one clinic's big batch does not hold up another's."""

    INTERACTIVE = 0, _("Interactive")
    BULK = 1, _("Bulk")


class InferenceJob(models.Model):
    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="job")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    enqueued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    processing_ms = models.PositiveIntegerField(null=True, blank=True)
    # Which worker process holds a RUNNING job ("node/pid"): a job whose holder is gone is re-claimed at once.
    worker = models.CharField(max_length=200, blank=True)
    priority = models.PositiveSmallIntegerField(choices=JobPriority.choices, default=JobPriority.INTERACTIVE)

    class Meta:
        indexes = [models.Index(fields=["status", "priority", "id"], name="job_claim_order")]

    def __str__(self) -> str:
        return f"job {self.pk} {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class Result(models.Model):
    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="result")
    label = models.CharField(max_length=10, choices=Label.choices, db_index=True)
    probability = models.FloatField(help_text="Calibrated P(pneumonia), 0-1")
    threshold = models.FloatField()
    model_version = models.CharField(max_length=64)
    heatmap = models.FileField(upload_to=derived_path, max_length=255)
    overlay = models.FileField(upload_to=derived_path, max_length=255)
    inference_ms = models.PositiveIntegerField()
    logit = models.FloatField(null=True, blank=True, help_text="The model's raw output, before any calibration")
    # The inference runtime that computed the call (worker.ml: "litert" or "tensorflow"); blank before it was kept.
    runtime = models.CharField(max_length=16, blank=True, default="")
    # The clinic's adopted operating point the call was made at; None: the model card's own, not validated here.
    operating_point = models.ForeignKey(
        "diagnosis.OperatingPoint", null=True, blank=True, on_delete=models.PROTECT, related_name="results"
    )
    # Drawn at random when the result was recorded (diagnosis.site.verification): an unbiased sample for reviewers.
    verification_sample = models.BooleanField(default=False, db_index=True)
    sampling_probability = models.FloatField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.label} {self.probability:.3f}"


class Review(models.Model):
    """A reviewer's reading of a study: agree or disagree with the model, and the final label."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="review")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    agrees = models.BooleanField(help_text="The final label is the model's label")
    final_label = models.CharField(max_length=10, choices=Label.choices, db_index=True)
    note = models.TextField(max_length=NOTE_MAX_LENGTH, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.final_label} ({'agrees' if self.agrees else 'disagrees'})"
