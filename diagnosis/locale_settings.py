"""Writes on who sees which language and time zone: a member's own language (the header's switcher) and the clinic's
language and zone (its admin). The clinic's change is audited as the admin's other changes are."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from diagnosis import audit
from diagnosis.access import AnyUser, membership_of, require_membership
from diagnosis.audit import NO_ORIGIN, Origin
from diagnosis.models import AuditAction, Clinic, Role
from diagnosis.models.clinics import validate_time_zone


def choose_language(user: AnyUser, language: str) -> bool:
    """Save a member's choice of language (the switcher); False when there is no member to save it for (signed out,
    a superuser without a clinic) or the language is not offered."""
    membership = membership_of(user)
    if membership is None or language not in dict(settings.LANGUAGES):
        return False
    if membership.language != language:
        membership.language = language
        membership.save(update_fields=["language"])
    return True


def set_clinic_locale(admin: User, *, language: str, time_zone: str, origin: Origin = NO_ORIGIN) -> Clinic:
    """The admin's clinic's default language (blank: each browser's) and time zone (an IANA name). Recorded in the
    audit trail with what it was before; no event when nothing changes."""
    clinic = require_membership(admin, Role.ADMIN).clinic
    if language and language not in dict(settings.LANGUAGES):
        raise ValueError(f"language {language!r} is not offered")
    validate_time_zone(time_zone)
    with transaction.atomic():
        clinic = Clinic.objects.select_for_update().get(pk=clinic.pk)
        before = {"language": clinic.language, "time_zone": clinic.time_zone}
        after = {"language": language, "time_zone": time_zone}
        if before == after:
            return clinic
        clinic.language, clinic.time_zone = language, time_zone
        clinic.save(update_fields=["language", "time_zone"])
        # A settings change, recorded with the admin's permission changes (the trail has no action of its own for it).
        detail = {"change": "clinic settings", "from": before, "to": after}
        audit.record(admin, AuditAction.PERMISSION_CHANGE, clinic, detail, origin=origin)
    return clinic
