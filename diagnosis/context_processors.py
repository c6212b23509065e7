from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from diagnosis.access import membership_of
from diagnosis.models import Membership, Role


def membership(request: HttpRequest) -> dict[str, Membership | bool | str | None]:
    """The user's clinic and role, for the navigation; the time zone the pages' times are in (TZ_NAME)."""
    m = membership_of(request.user)
    return {
        "membership": m,
        "is_reviewer": bool(m and m.allows(Role.REVIEWER)),
        "is_clinic_admin": bool(m and m.allows(Role.ADMIN)),
        "TIME_ZONE_NAME": settings.TIME_ZONE,
    }
