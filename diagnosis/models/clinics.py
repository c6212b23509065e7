"""Clinics (the tenants), their members and roles, API batches and Idempotency-Key answers."""

from __future__ import annotations

import uuid
import zoneinfo
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


@cache
def time_zone_names() -> frozenset[str]:
    """The IANA zones this machine knows (the system's tzdata, else the tzdata package): read once, it is ~600."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(_("%(value)s is not an IANA time zone."), code="invalid", params={"value": value})


def default_time_zone() -> str:
    """A new clinic's zone: the installation's (TZ_NAME). A callable, so that no migration holds the value."""
    return str(settings.TIME_ZONE)


def language_choices() -> list[tuple[str, str]]:
    return [(code, name) for code, name in settings.LANGUAGES]


class Clinic(models.Model):
    """A tenant. Several clinics share one installation and never see each other's data."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    # The members' language unless a member chose one; blank: each browser's (Accept-Language).
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        choices=language_choices,
        help_text=_("Blank: each browser's language."),
    )
    # Every page, report, export and the dashboard's days are in this zone (diagnosis.locale_middleware).
    time_zone = models.CharField(
        _("time zone"), max_length=64, default=default_time_zone, validators=[validate_time_zone]
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    """Each role can do everything the roles before it can."""

    CLINICIAN = "clinician", _("Clinician")
    REVIEWER = "reviewer", _("Reviewer")
    ADMIN = "admin", _("Clinic admin")


ROLE_RANK = {Role.CLINICIAN: 1, Role.REVIEWER: 2, Role.ADMIN: 3}


class Membership(models.Model):
    """A user's one clinic and role. A user without one (a platform superuser) sees no clinic data."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.CLINICIAN)
    created = models.DateTimeField(auto_now_add=True)
    # The language this member chose in the header's switcher; blank: the clinic's.
    language = models.CharField(
        _("language"), max_length=10, blank=True, choices=language_choices, help_text=_("Blank: the clinic's language.")
    )

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
