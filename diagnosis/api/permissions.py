from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from diagnosis.access import has_role, membership_of
from diagnosis.models import Role


class IsClinicMember(BasePermission):
    """Authenticated, active, and a member of a clinic (every API call acts inside one clinic)."""

    message = "Your account is not a member of a clinic."

    def has_permission(self, request: Request, view: Any) -> bool:
        return membership_of(request.user) is not None


class IsClinicReviewer(BasePermission):
    message = "This needs the reviewer role."

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_role(request.user, Role.REVIEWER)
