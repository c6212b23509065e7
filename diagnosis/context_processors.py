from __future__ import annotations

from django.http import HttpRequest

from diagnosis.access import membership_of
from diagnosis.models import Membership, Role


def membership(request: HttpRequest) -> dict[str, Membership | bool | None]:
    """The user's clinic and role, for the navigation."""
    m = membership_of(request.user)
    return {
        "membership": m,
        "is_reviewer": bool(m and m.allows(Role.REVIEWER)),
        "is_clinic_admin": bool(m and m.allows(Role.ADMIN)),
    }
