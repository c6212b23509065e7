"""DICOM peers, the instances they sent, and what goes back to them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from diagnosis.models.clinics import Clinic
from diagnosis.models.common import NOTE_MAX_LENGTH
from diagnosis.models.studies import Label, Study

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
    PENDING = "pending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


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
