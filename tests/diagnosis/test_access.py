"""diagnosis.access: who is a member of a clinic, which role allows what, and what a page answers to someone
without the role (the promise every page's decorator makes, asserted here on the functions themselves)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.test import RequestFactory

from diagnosis import access
from diagnosis.models import Clinic, Role
from tests.factories import make_member

pytestmark = pytest.mark.django_db

ROLES = [Role.CLINICIAN, Role.REVIEWER, Role.ADMIN]
# The whole message, as the 403 page shows it (a match on part of it let a mangled message pass).
NO_CLINIC = r"^Your account is not a member of a clinic\. Ask your clinic administrator\.$"


def test_membership_of_a_member_is_their_clinic(alice: User, clinic_a: Clinic) -> None:
    membership = access.membership_of(alice)
    assert membership is not None
    assert membership.clinic == clinic_a
    assert membership.user == alice


def test_no_membership_for_anonymous_inactive_or_clinicless_users(alice: User) -> None:
    assert access.membership_of(AnonymousUser()) is None
    superuser = User.objects.create_superuser("root", password="root-pass-123")
    assert access.membership_of(superuser) is None
    alice.is_active = False
    assert access.membership_of(alice) is None


@pytest.mark.parametrize("held", ROLES)
@pytest.mark.parametrize("needed", ROLES)
def test_a_role_allows_itself_and_the_roles_below_it(clinic_a: Clinic, held: Role, needed: Role) -> None:
    user = make_member("someone", clinic_a, role=held)
    allowed = ROLES.index(held) >= ROLES.index(needed)
    assert access.has_role(user, needed) is allowed
    if allowed:
        assert access.require_membership(user, needed) == user.membership
    else:
        with pytest.raises(PermissionDenied, match=rf"^This needs the {needed.label.lower()} role\.$"):
            access.require_membership(user, needed)


def test_no_role_for_users_without_a_clinic(alice: User) -> None:
    superuser = User.objects.create_superuser("root", password="root-pass-123")
    for user in (AnonymousUser(), superuser):
        assert access.has_role(user, Role.CLINICIAN) is False
        with pytest.raises(PermissionDenied, match=NO_CLINIC):
            access.require_membership(user)
    alice.is_active = False
    assert access.has_role(alice, Role.CLINICIAN) is False


def test_require_membership_defaults_to_the_clinician_role(alice: User) -> None:
    assert access.require_membership(alice) == alice.membership
    with pytest.raises(PermissionDenied, match=NO_CLINIC):
        access.require_membership(AnonymousUser())


def _page(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    """A page that says what it was called with."""
    return HttpResponse(f"{args} {sorted(kwargs.items())}")


def _get(user: User | AnonymousUser) -> HttpRequest:
    request = RequestFactory().get("/somewhere/")
    request.user = user
    return request


def test_role_required_sends_anonymous_users_to_the_login_page() -> None:
    response = access.role_required(Role.REVIEWER)(_page)(_get(AnonymousUser()))
    assert response.status_code == 302
    assert response["Location"] == f"{resolve_url(settings.LOGIN_URL)}?next=/somewhere/"


def test_role_required_refuses_members_without_the_role(clinic_a: Clinic) -> None:
    clinician = make_member("carol", clinic_a, role=Role.CLINICIAN)
    with pytest.raises(PermissionDenied, match=r"^This needs the reviewer role\.$"):
        access.role_required(Role.REVIEWER)(_page)(_get(clinician))
    superuser = User.objects.create_superuser("root", password="root-pass-123")
    with pytest.raises(PermissionDenied, match=NO_CLINIC):
        access.role_required()(_page)(_get(superuser))


def test_role_required_runs_the_page_with_its_arguments_for_members_with_the_role(clinic_a: Clinic) -> None:
    reviewer = make_member("rita", clinic_a, role=Role.REVIEWER)
    response = access.role_required(Role.REVIEWER)(_page)(_get(reviewer), 7, pk="x")
    assert response.status_code == 200
    assert response.content.decode() == "(7,) [('pk', 'x')]"
    # The default role is clinician: every member passes.
    clinician = make_member("carl", clinic_a)
    assert access.role_required()(_page)(_get(clinician)).status_code == 200


def test_role_required_keeps_the_page_name() -> None:
    assert access.role_required()(_page).__name__ == "_page"
