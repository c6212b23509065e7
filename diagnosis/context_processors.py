from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from diagnosis.access import membership_of
from diagnosis.models import Role
from diagnosis.site import monitoring


def membership(request: HttpRequest) -> dict[str, Any]:
    """The user's clinic and role, for the navigation; the time zone the pages' times are in (the active one: the
    member's clinic's, else TZ_NAME, as diagnosis.locale_middleware activated it); for a clinic admin, the model
    health alerts of the last week (the banner)."""
    user = getattr(request, "user", None)  # not there on a page answered before authentication (a 400 for a bad Host)
    m = membership_of(user) if user is not None else None
    admin = bool(m and m.allows(Role.ADMIN))
    return {
        "membership": m,
        "is_reviewer": bool(m and m.allows(Role.REVIEWER)),
        "is_clinic_admin": admin,
        "site_alerts": monitoring.banner_in_words(m.clinic_id) if m is not None and admin else [],
        "TIME_ZONE_NAME": timezone.get_current_timezone_name(),
        # The header's switcher: each language named in itself (settings.LANGUAGES as written, untranslated).
        "language_choices": settings.LANGUAGES,
    }
