from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from diagnosis.access import membership_of
from diagnosis.models import Membership, Role


def membership(request: HttpRequest) -> dict[str, Membership | bool | str | None]:
    """The user's clinic and role, for the navigation; the time zone the pages' times are in (TZ_NAME)."""
    user = getattr(request, "user", None)  # not there on a page answered before authentication (a 400 for a bad Host)
    m = membership_of(user) if user is not None else None
    return {
        "membership": m,
        "is_reviewer": bool(m and m.allows(Role.REVIEWER)),
        "is_clinic_admin": bool(m and m.allows(Role.ADMIN)),
        "TIME_ZONE_NAME": settings.TIME_ZONE,
    }
