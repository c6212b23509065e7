"""Who may do what: a user's clinic membership and role checks for pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from diagnosis.models import Membership, Role

AnyUser = User | AnonymousUser
View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def membership_of(user: AnyUser) -> Membership | None:
    """The active user's clinic membership, or None (anonymous, inactive, or no clinic: e.g. a superuser)."""
    if not user.is_authenticated or not user.is_active:
        return None
    try:
        return cast(User, user).membership
    except Membership.DoesNotExist:
        return None


def has_role(user: AnyUser, role: str) -> bool:
    membership = membership_of(user)
    return membership is not None and membership.allows(role)


def require_membership(user: AnyUser, role: str = Role.CLINICIAN) -> Membership:
    """The user's membership if it allows `role`; PermissionDenied (403) otherwise."""
    membership = membership_of(user)
    if membership is None:
        raise PermissionDenied("Your account is not a member of a clinic. Ask your clinic administrator.")
    if not membership.allows(role):
        raise PermissionDenied(f"This needs the {Role(role).label.lower()} role.")
    return membership


def role_required(role: str = Role.CLINICIAN) -> Callable[[View], View]:
    """Pages: anonymous users go to the login page; members without the role get 403."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            require_membership(request.user, role)
            return view(request, *args, **kwargs)

        return cast(View, login_required(wrapped))

    return decorate
