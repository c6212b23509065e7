"""The append-only audit trail."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from diagnosis.models.clinics import Clinic


class AuditAction(models.TextChoices):
    LOGIN = "login", _("Login")
    LOGIN_FAILED = "login_failed", _("Failed login")
    LOGOUT = "logout", _("Logout")
    UPLOAD = "upload", _("Upload")
    VIEW_STUDY = "view_study", _("View study")
    VIEW_FILE = "view_file", _("View file")
    REVIEW = "review", _("Review")
    EXPORT = "export", _("Export")
    PERMISSION_CHANGE = "permission_change", _("Permission change")
    LOCKOUT = "lockout", _("Locked out")
    UNLOCK = "unlock", _("Unlocked")
    DICOM_REFUSED = "dicom_refused", _("DICOM caller refused")
    DICOM_SENT = "dicom_sent", _("Results sent to PACS")
    OPERATING_POINT = "operating_point", _("Operating point changed")
    SITE_ALERT = "site_alert", _("Model health alert")


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
