"""Studies, their inference jobs and results. The database is the record; Redis only carries job ids."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


def _study_path(folder: str, instance: models.Model, filename: str) -> str:
    study_id = getattr(instance, "study_id", None) or instance.pk
    return f"{folder}/{study_id}/{filename}"


def original_path(instance: Study, filename: str) -> str:
    return _study_path("studies", instance, filename)


def derived_path(instance: models.Model, filename: str) -> str:
    return _study_path("derived", instance, filename)


class Batch(models.Model):
    """Studies submitted together through the API."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="batches")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"batch {self.id}"


class IdempotentResponse(models.Model):
    """The first answer to a POST carrying an Idempotency-Key, replayed for retries of that POST."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=200)
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="unique_idempotency_key_per_user")]

    def __str__(self) -> str:
        return f"{self.key} -> {self.status_code}"


class Study(models.Model):
    """One uploaded radiograph. The id is a random UUID, so no URL of a study can be guessed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="studies")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="studies")
    image = models.FileField(upload_to=original_path, max_length=255)
    preview = models.FileField(upload_to=derived_path, max_length=255)
    thumbnail = models.FileField(upload_to=derived_path, max_length=255)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=50)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return f"{self.original_name} ({self.id})"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"


FINAL_STATUSES = (JobStatus.DONE, JobStatus.FAILED, JobStatus.REJECTED)


class InferenceJob(models.Model):
    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="job")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    enqueued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    processing_ms = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"job {self.pk} {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class Label(models.TextChoices):
    NORMAL = "NORMAL", "Normal"
    PNEUMONIA = "PNEUMONIA", "Pneumonia"


class Result(models.Model):
    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="result")
    label = models.CharField(max_length=10, choices=Label.choices, db_index=True)
    probability = models.FloatField(help_text="Calibrated P(pneumonia), 0-1")
    threshold = models.FloatField()
    model_version = models.CharField(max_length=64)
    heatmap = models.FileField(upload_to=derived_path, max_length=255)
    overlay = models.FileField(upload_to=derived_path, max_length=255)
    inference_ms = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.label} {self.probability:.3f}"
