"""Going live at a site: the operating points a clinic adopted, its site settings, and the monitoring alerts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from diagnosis.models.clinics import Clinic
from diagnosis.models.common import NOTE_MAX_LENGTH, printable
from worker.ml.operating_point import OperatingPoint as Point


class OperatingPoint(models.Model):
    """A clinic's own operating point: a local recalibration of the logit (Platt: slope, intercept) and a
    threshold, proposed from its own labelled studies and adopted by a clinic admin with a reason. Rows are never
    changed but to retire them: adopting or reverting makes a new version, so every result keeps the point it was
    judged with. A point holds only for the model version it was fitted on."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="operating_points")
    version = models.PositiveIntegerField()
    model_version = models.CharField(max_length=64)
    slope = models.FloatField()
    intercept = models.FloatField()
    threshold = models.FloatField()
    target_sensitivity = models.FloatField()
    reason = models.TextField(max_length=NOTE_MAX_LENGTH, validators=[printable])
    adopted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    adopted_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    # The proposal's evidence: counts, expected sensitivity and specificity with intervals, the rule, study ids.
    evidence = models.JSONField(default=dict)
    reinstates = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["clinic", "version"], name="one_operating_point_version")]

    def __str__(self) -> str:
        return f"{self.clinic} v{self.version} ({self.model_version}) at {self.threshold:.3f}"

    def point(self) -> Point:
        return Point(slope=self.slope, intercept=self.intercept, threshold=self.threshold)


class SiteSettings(models.Model):
    """A clinic's go-live settings: the sensitivity its operating point is chosen for, and the share of each call
    drawn at random into the verification sample (None: the installation's default)."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="site_settings")
    target_sensitivity = models.FloatField(null=True, blank=True)
    verification_rate_normal = models.FloatField(null=True, blank=True)
    verification_rate_pneumonia = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "site settings"

    def __str__(self) -> str:
        return f"site settings of {self.clinic}"


class AlertLevel(models.TextChoices):
    WATCH = "watch", _("Watch")
    ACT = "act", _("Act")


class SiteAlert(models.Model):
    """A monitoring rule that fired for a clinic on a day (diagnosis.site.monitoring). One row per clinic, rule
    and day: the daily run is idempotent."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="site_alerts")
    day = models.DateField()
    kind = models.CharField(max_length=40)
    level = models.CharField(max_length=10, choices=AlertLevel.choices)
    value = models.FloatField()
    limit = models.FloatField()
    message = models.TextField()
    model_version = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "kind"]
        constraints = [models.UniqueConstraint(fields=["clinic", "day", "kind"], name="one_alert_a_rule_a_day")]

    def __str__(self) -> str:
        return f"{self.clinic} {self.day} {self.kind} {self.level}"
