from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from diagnosis import people
from diagnosis.models import AuditEvent, Membership, Role
from tests.factories import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(clinic_a):
    return make_member("ann", clinic_a, Role.ADMIN)


def test_an_invited_user_sets_a_password_with_the_link_and_logs_in(admin, client, settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.force_login(admin)
    page = client.post(
        reverse("diagnosis:people"), {"username": "newdoc", "email": "newdoc@example.org", "role": "reviewer"}
    ).content.decode()
    link = re.search(r'<code class="link">(http://testserver/accounts/reset/[^<]+)</code>', page)
    assert link, page
    assert link.group(1) in mail.outbox[0].body and mail.outbox[0].to == ["newdoc@example.org"]
    user = User.objects.get(username="newdoc")
    assert not user.has_usable_password() and user.membership.role == Role.REVIEWER
    assert user.membership.clinic == admin.membership.clinic

    invitee = Client()
    # Django swaps the token in the link for one kept in the session, then shows the form.
    form_url = invitee.get(link.group(1).removeprefix("http://testserver"))["Location"]
    response = invitee.post(form_url, {"new_password1": "a-Long-pass-9182", "new_password2": "a-Long-pass-9182"})
    assert response.status_code == 302
    assert invitee.login(username="newdoc", password="a-Long-pass-9182")
    assert (
        "expired or was already used"
        in invitee.get(link.group(1).removeprefix("http://testserver"), follow=True).content.decode()
    )
    event = AuditEvent.objects.get(action="permission_change")
    assert event.username == "ann" and event.detail == {"change": "invite", "user": "newdoc", "role": "reviewer"}


def test_an_invitation_link_works_for_seven_days_and_not_a_second_longer(admin, monkeypatch) -> None:
    """INVITATION_VALID_SECONDS (default 7 days) is how long the set-password link works; then it says so."""
    from datetime import datetime, timedelta

    from django.contrib.auth.tokens import PasswordResetTokenGenerator

    invitation = people.invite(admin, username="newdoc", email="newdoc@example.org", role=Role.CLINICIAN,
                               site_url="http://testserver")  # fmt: skip
    path = invitation.link.removeprefix("http://testserver")
    sent = datetime.now()

    def opened_after(seconds: int) -> str:
        monkeypatch.setattr(PasswordResetTokenGenerator, "_now", lambda self: sent + timedelta(seconds=seconds))
        return Client().get(path, follow=True).content.decode()

    assert 'name="new_password1"' in opened_after(7 * 24 * 3600 - 60)
    late = opened_after(7 * 24 * 3600 + 60)
    assert "expired or was already used" in late and 'name="new_password1"' not in late


@pytest.mark.parametrize("username", ["alice", "ALICE", "Alice", "\uff21\uff2c\uff29\uff23\uff25", "\uff21lice"])
def test_a_taken_username_or_a_look_alike_of_it_is_a_form_error(admin, alice, client, username: str) -> None:
    client.force_login(admin)
    response = client.post(reverse("diagnosis:people"), {"username": username, "email": "a@b.org", "role": "admin"})
    assert response.status_code == 400 and "is taken" in response.content.decode()
    assert alice.membership.role == Role.CLINICIAN and User.objects.filter(username__iexact="alice").count() == 1


def test_a_look_alike_beyond_ascii_is_refused_too(admin, clinic_a, client) -> None:
    make_member("émile", clinic_a)
    client.force_login(admin)
    response = client.post(reverse("diagnosis:people"), {"username": "Émile", "email": "e@b.org", "role": "reviewer"})
    assert response.status_code == 400 and "is taken" in response.content.decode()
    assert [u.username for u in User.objects.filter(username__in=["émile", "Émile"])] == ["émile"]


@pytest.mark.parametrize(
    "username", ["north-\u0430dmin", "n\u03bfrth-admin", "north-adm\u0131n", "\ufb01rst-user", "\u212aelvin"]
)
@pytest.mark.parametrize("where", ["this clinic", "another clinic", "nowhere"])
def test_a_look_alike_username_is_refused_saying_nothing_of_other_clinics(admin, clinic_b, client, username, where):
    """Issue 28, item 8: each was accepted beside north-admin, first-user or kelvin. The answer is the same
    whether the name it looks like is in this clinic or another; a name mixing scripts is refused outright."""
    clinics = {"this clinic": admin.membership.clinic, "another clinic": clinic_b}
    if where in clinics:
        for existing in ("north-admin", "first-user", "kelvin"):
            make_member(existing, clinics[where])
    client.force_login(admin)
    response = client.post(reverse("diagnosis:people"), {"username": username, "email": "a@b.org", "role": "admin"})
    mixed = username in ("north-\u0430dmin", "n\u03bfrth-admin")
    if where == "nowhere" and not mixed:
        assert response.status_code == 302 or response.status_code == 200
        return
    assert response.status_code == 400 and not User.objects.filter(username=username).exists()
    page = response.content.decode()
    assert ("Use letters of one script" in page) if mixed else ("is taken" in page)


@pytest.mark.parametrize("where", ["this clinic", "another clinic"])
def test_a_name_written_wholly_in_look_alike_letters_is_taken(admin, clinic_b, client, where) -> None:
    """One script throughout, so not mixed: the confusables skeleton (UTS #39) still sees "pope" in Cyrillic."""
    make_member("pope", admin.membership.clinic if where == "this clinic" else clinic_b)
    client.force_login(admin)
    cyrillic = "\u0440\u043e\u0440\u0435"  # Cyrillic er, o, er, ie
    response = client.post(reverse("diagnosis:people"), {"username": cyrillic, "email": "a@b.org", "role": "admin"})
    assert response.status_code == 400 and "is taken" in response.content.decode()
    assert not User.objects.filter(username=cyrillic).exists()


def test_role_changes_are_audited(admin, alice, client) -> None:
    client.force_login(admin)
    client.post(reverse("diagnosis:person_role", args=[alice.pk]), {"role": "reviewer"})
    assert Membership.objects.get(user=alice).role == Role.REVIEWER
    event = AuditEvent.objects.get(action="permission_change")
    assert event.detail == {"change": "role", "user": "alice", "from": "clinician", "to": "reviewer"}
    assert (event.target_type, event.target_id) == ("user", str(alice.pk))


def test_deactivation_ends_the_session_and_the_api_token_at_once(admin, alice, client) -> None:
    alice_web = Client()
    alice_web.force_login(alice)
    token = Token.objects.create(user=alice)
    assert alice_web.get(reverse("diagnosis:history")).status_code == 200
    client.force_login(admin)
    client.post(reverse("diagnosis:person_active", args=[alice.pk]), {"active": "0"})
    assert alice_web.get(reverse("diagnosis:history")).status_code == 302  # back to the login page
    api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get(reverse("api:study-list")).status_code == 401
    assert not Client().login(username="alice", password="alice-pass-123")
    client.post(reverse("diagnosis:person_active", args=[alice.pk]), {"active": "1"})
    assert Client().login(username="alice", password="alice-pass-123")
    changes = AuditEvent.objects.filter(action="permission_change").order_by("id").values_list("detail", flat=True)
    assert [d["change"] for d in changes] == ["deactivate", "reactivate"]


def test_a_reactivation_does_not_revive_a_session_opened_before_the_deactivation(admin, alice, client) -> None:
    """Issue 28, item 9: the old session was anonymous while alice was inactive, and hers again once reactivated."""
    alice_web, other = Client(), Client()
    assert alice_web.login(username="alice", password="alice-pass-123")
    assert other.login(username="ann", password="ann-pass-123")  # someone else's session is left alone
    assert alice_web.get(reverse("diagnosis:history")).status_code == 200
    client.force_login(admin)
    client.post(reverse("diagnosis:person_active", args=[alice.pk]), {"active": "0"})
    client.post(reverse("diagnosis:person_active", args=[alice.pk]), {"active": "1"})
    assert alice_web.get(reverse("diagnosis:history")).status_code == 302  # anonymous: back to the login page
    assert other.get(reverse("diagnosis:history")).status_code == 200
    assert Client().login(username="alice", password="alice-pass-123")  # a new login works


def test_an_admin_cannot_demote_or_deactivate_themselves(admin) -> None:
    with pytest.raises(people.PeopleError):
        people.set_role(admin, admin.membership, Role.CLINICIAN)
    with pytest.raises(people.PeopleError):
        people.set_active(admin, admin.membership, False)
    admin.refresh_from_db()
    assert admin.is_active and admin.membership.role == Role.ADMIN


def test_an_admin_cannot_touch_another_clinics_user_even_through_the_service(admin, bob) -> None:
    with pytest.raises(people.PeopleError):
        people.set_active(admin, bob.membership, False)
    bob.refresh_from_db()
    assert bob.is_active


def test_the_people_page_lists_only_the_clinic(admin, alice, bob, client) -> None:
    client.force_login(admin)
    page = client.get(reverse("diagnosis:people")).content.decode()
    assert 'data-user="alice"' in page and 'data-user="ann"' in page and 'data-user="bob"' not in page
