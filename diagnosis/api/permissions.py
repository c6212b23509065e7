from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from diagnosis.access import has_role, membership_of
from diagnosis.models import Role


class IsClinicMember(BasePermission):
    """Authenticated, active, and a member of a clinic (every API call acts inside one clinic)."""

    message = _("Your account is not a member of a clinic.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return membership_of(request.user) is not None


class IsClinicReviewer(BasePermission):
    message = _("This needs the reviewer role.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_role(request.user, Role.REVIEWER)


class IsClinicAdmin(BasePermission):
    message = _("This needs the clinic admin role.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_role(request.user, Role.ADMIN)


class ReadReviewerWriteAdmin(BasePermission):
    """Reviewers read (GET, HEAD, OPTIONS); only a clinic admin changes anything."""

    message = _("Reading needs the reviewer role; changing it needs the clinic admin role.")

    def has_permission(self, request: Request, view: Any) -> bool:
        needed = Role.REVIEWER if request.method in ("GET", "HEAD", "OPTIONS") else Role.ADMIN
        return has_role(request.user, needed)
