"""Studies, their inference jobs and results. The database is the record; Redis only carries job ids."""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any, NoReturn

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from worker.ml.spec import LABELS

# Limits of the optional study details and of notes, read by the model fields, the upload form and the API.
PATIENT_REF_MAX_LENGTH = 64
NOTE_MAX_LENGTH = 2000
MAX_AGE_YEARS = 130


# The files a study stores, by field: the upload and what intake derives from it (on Study), and what the worker
# draws (on Result). Intake, the worker and the orphan-file sweep all go by these lists.
STUDY_FILE_FIELDS = ("image", "preview", "thumbnail", "model_copy")
RESULT_FILE_FIELDS = ("heatmap", "overlay")


def printable(value: str) -> None:
    """A validator of free text (notes, references): no control characters but line breaks and tabs. The text is
    shown on pages, exported to CSV and sent to a PACS in a structured report."""
    bad = sorted({f"U+{ord(c):04X}" for c in value if unicodedata.category(c) == "Cc" and c not in "\n\r\t"})
    if bad:
        raise ValidationError(f"Remove the control characters ({', '.join(bad)}).")


def _study_path(folder: str, instance: models.Model, filename: str) -> str:
    """A study's files go to <folder>/<first two hex digits of its id>/<its id>-<filename>: 256 folders in all,
    made once, not a folder a study, which doubled the inodes a study takes (each costs the file system as much as
    a file) and runs into per-folder limits on subfolders (ext3: 32,000). Names stored before keep working: each
    row holds its own."""
    study_id = str(getattr(instance, "study_id", None) or instance.pk)
    return f"{folder}/{study_id[:2]}/{study_id}-{filename}"


def original_path(instance: Study, filename: str) -> str:
    return _study_path("studies", instance, filename)


def derived_path(instance: models.Model, filename: str) -> str:
    return _study_path("derived", instance, filename)


class Clinic(models.Model):
    """A tenant. Several clinics share one installation and never see each other's data."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    """Each role can do everything the roles before it can."""

    CLINICIAN = "clinician", "Clinician"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Clinic admin"


ROLE_RANK = {Role.CLINICIAN: 1, Role.REVIEWER: 2, Role.ADMIN: 3}


class Membership(models.Model):
    """A user's one clinic and role. A user without one (a platform superuser) sees no clinic data."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.CLINICIAN)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.clinic})"

    def allows(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


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
    # sha256 of the method, path and body: a key reused for a different request is refused, not replayed.
    fingerprint = models.CharField(max_length=64, blank=True)
    status_code = models.PositiveSmallIntegerField()  # 0: the request holding the key is still running
    body = models.JSONField()
    created = models.DateTimeField(auto_now_add=True)
    # The holder's last sign of life, renewed as it works; a retry takes over a key whose lease ran out. It is
    # also the fencing token: a holder writes only while the lease is the one it set (diagnosis.api.idempotency).
    lease = models.DateTimeField(default=timezone.now)
    # The batch the holder is filling, so that a retry after it was cut off goes on with it instead of storing its
    # studies again.
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="unique_idempotency_key_per_user")]

    def __str__(self) -> str:
        return f"{self.key} -> {self.status_code}"


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "O", "Other"


class Projection(models.TextChoices):
    PA = "PA", "PA"
    AP = "AP", "AP"


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
    patient_ref = models.CharField("patient reference", max_length=PATIENT_REF_MAX_LENGTH, blank=True, db_index=True)
    age_years = models.PositiveSmallIntegerField("age (years)", null=True, blank=True)
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True)
    projection = models.CharField(max_length=2, choices=Projection.choices, blank=True)
    clinical_note = models.TextField(max_length=NOTE_MAX_LENGTH, blank=True)

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


class JobPriority(models.IntegerChoices):
    """Which queued job a worker takes first (issue 12): a study someone waits for at the screen (a page upload,
    a single-study API call, a DICOM instance) before bulk work; bulk work round-robin between clinics."""

    INTERACTIVE = 0, "Interactive"
    BULK = 1, "Bulk"


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


class Label(models.TextChoices):
    """The model's labels. The declaration is worker.ml.spec.LABELS; the names here exist for queries
    (Label.PNEUMONIA) and must match it, which is checked when this module loads."""

    NORMAL = "NORMAL", "Normal"
    PNEUMONIA = "PNEUMONIA", "Pneumonia"

    @classmethod
    def other(cls, label: str) -> Label:
        """With two labels, the one a reviewer means by disagreeing with `label`."""
        return next(cls(value) for value in cls.values if value != label)


if tuple(Label.values) != LABELS:
    raise ImportError(f"diagnosis.models.Label {Label.values} differs from worker.ml.spec.LABELS {LABELS}")


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


class AuditAction(models.TextChoices):
    LOGIN = "login", "Login"
    LOGIN_FAILED = "login_failed", "Failed login"
    LOGOUT = "logout", "Logout"
    UPLOAD = "upload", "Upload"
    VIEW_STUDY = "view_study", "View study"
    VIEW_FILE = "view_file", "View file"
    REVIEW = "review", "Review"
    EXPORT = "export", "Export"
    PERMISSION_CHANGE = "permission_change", "Permission change"
    LOCKOUT = "lockout", "Locked out"
    UNLOCK = "unlock", "Unlocked"
    DICOM_REFUSED = "dicom_refused", "DICOM caller refused"
    DICOM_SENT = "dicom_sent", "Results sent to PACS"


class AppendOnlyError(Exception):
    """Audit events are never changed or deleted (the database refuses too, see migration 0002)."""


class AuditQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("The audit trail is append-only.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("The audit trail is append-only.")


class AuditEvent(models.Model):
    """Who did what, when, to which object and from where. Append-only."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    clinic = models.ForeignKey(Clinic, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    username = models.CharField(max_length=150, help_text="As typed, for failed logins; kept if the user is renamed")
    action = models.CharField(max_length=20, choices=AuditAction.choices, db_index=True)
    target_type = models.CharField(max_length=20, blank=True)
    target_id = models.CharField(max_length=64, blank=True, db_index=True)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        # The clinic admin's page: one clinic's events, newest first.
        indexes = [models.Index(fields=["clinic", "-at"], name="audit_clinic_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.target_type}:{self.target_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("The audit trail is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("The audit trail is append-only.")


AE_TITLE_MAX_LENGTH = 16


class DicomPeer(models.Model):
    """A PACS or modality allowed to send studies to the listener (by its calling AE title), the clinic they go
    to, the user recorded as their uploader, and where that clinic's results are sent back (C-STORE)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="dicom_peers")
    ae_title = models.CharField("calling AE title", max_length=AE_TITLE_MAX_LENGTH, unique=True)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, help_text="recorded as the uploader of received studies"
    )
    send_ae_title = models.CharField("results: called AE title", max_length=AE_TITLE_MAX_LENGTH, blank=True)
    send_host = models.CharField("results: host", max_length=255, blank=True)
    send_port = models.PositiveIntegerField("results: port", null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = "DICOM peer"

    def __str__(self) -> str:
        return f"{self.ae_title} -> {self.clinic}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        membership = getattr(self.uploader, "membership", None) if self.uploader_id else None
        if self.uploader_id and (membership is None or membership.clinic_id != self.clinic_id):
            raise ValidationError({"uploader": "The uploader must be a member of this clinic."})

    @property
    def sends_results(self) -> bool:
        return bool(self.active and self.send_ae_title and self.send_host and self.send_port)


class DicomInstance(models.Model):
    """A study that came as DICOM: the original UIDs (the stored copy is de-identified and carries new ones), so
    that results go back into the original study, and who sent it. Patient name and birth date only with
    DICOM_KEEP_IDENTIFIERS."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="dicom")
    study_uid = models.CharField(max_length=64, db_index=True)
    series_uid = models.CharField(max_length=64)
    sop_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64)
    accession = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=200, blank=True)
    birth_date = models.CharField(max_length=8, blank=True)
    peer = models.ForeignKey(DicomPeer, null=True, blank=True, on_delete=models.SET_NULL, related_name="instances")

    def __str__(self) -> str:
        return f"{self.sop_uid} ({self.study_id})"


class SendStatus(models.TextChoices):
    PENDING = "pending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class ResultSend(models.Model):
    """Results of one DICOM study sent back to its clinic's PACS: the SR and the Secondary Capture. The UIDs are
    fixed when the row is made, so a re-send stores the same instances again (idempotent at the PACS)."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="result_send")
    status = models.CharField(max_length=10, choices=SendStatus.choices, default=SendStatus.PENDING, db_index=True)
    reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    series_uid = models.CharField(max_length=64)
    sr_uid = models.CharField(max_length=64)
    sc_uid = models.CharField(max_length=64)
    destination = models.CharField(max_length=300, blank=True)
    updated = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"send {self.study_id} {self.status}"


class ReviewSend(models.Model):
    """A reviewer's reading sent back to the study's PACS: a verified SR with the final label that names the
    model's SR as its predecessor. One row per reading saved, so a revised reading is a new SR (SOP UID fixed
    here: a re-send stores the same instance again); what it says is copied from the reading when it was saved."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="review_sends")
    final_label = models.CharField(max_length=10, choices=Label.choices)
    agrees = models.BooleanField()
    reviewer_name = models.CharField(max_length=150)
    note = models.TextField(max_length=NOTE_MAX_LENGTH, blank=True)  # the reviewer's note, in the SR as a comment
    status = models.CharField(max_length=10, choices=SendStatus.choices, default=SendStatus.PENDING, db_index=True)
    reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sr_uid = models.CharField(max_length=64)
    destination = models.CharField(max_length=300, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created", "pk"]

    def __str__(self) -> str:
        return f"review send {self.study_id} {self.final_label} {self.status}"
