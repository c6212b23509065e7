"""Writes on a clinic's people (the clinic admin's work): invite, change role, deactivate, reactivate.

Every change is a permission change in the audit trail. An admin cannot change their own role or
deactivate themselves, so a clinic is never left without the admin who made the change.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from confusable_homoglyphs import confusables
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.models import Session
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework.authtoken.models import Token

from diagnosis import audit, lockout
from diagnosis.access import require_membership
from diagnosis.audit import NO_ORIGIN, Origin
from diagnosis.models import AuditAction, Membership, Role


class PeopleError(Exception):
    """A change the clinic admin may not make; the message says why."""


@dataclass(frozen=True)
class Invitation:
    user: User
    link: str
    emailed: bool = False  # an SMTP server took the e-mail (without EMAIL_HOST nothing leaves the machine)


# Backends that deliver nothing: the page must not tell the admin an e-mail went out.
UNDELIVERED = ("django.core.mail.backends.console.EmailBackend", "django.core.mail.backends.dummy.EmailBackend")


def _mail(subject: str, body: str, to: str) -> bool:
    """Send the link (the admin sees it on screen anyway). True only when a delivering backend (SMTP) took it:
    without EMAIL_HOST it goes nowhere, or to the console in development."""
    if not to:
        return False
    sent = send_mail(subject, body, None, [to], fail_silently=True) == 1
    return sent and settings.EMAIL_BACKEND not in UNDELIVERED


def invitation_path(user: User) -> str:
    """The one-time link where the invited user sets a password (Django's password-reset token)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)})


def _skeleton(username: str) -> str:
    """What a name looks like (UTS #39's skeleton, from Unicode's confusables data as confusable_homoglyphs ships
    it): NFKC (the fi ligature is fi, the Kelvin sign is K), case folded, and each letter that has a Latin
    look-alike (a Cyrillic a, U+0430; a Greek omicron; a dotless i) replaced by it, so a name written wholly in
    look-alike letters is caught."""
    return "".join(_latin(c) for c in unicodedata.normalize("NFKC", username).casefold())


def _latin(c: str) -> str:
    if c.isascii():
        return c
    twins = confusables.confusables_data.get(c, ())
    return next((t["c"].casefold() for t in twins if t["c"].isascii() and t["c"].isalnum()), c)


def _mixed_scripts(username: str) -> bool:
    """Whether the name's letters come from more than one script (north-admin with a Cyrillic a, U+0430, or
    a Greek omicron, U+03BF, for an o): refused whatever names exist, so the answer tells nothing about other
    clinics' accounts."""
    scripts = {unicodedata.name(c, "?").split(" ")[0] for c in username if c.isalpha()}
    return len(scripts) > 1


def _taken(username: str) -> bool:
    """Whether an account's name looks like this one: the same skeleton ("Alice" and "alice", "ÉMILE" and "émile",
    ﬁrst-user, the Kelvin sign, a dotless i, a name in Cyrillic look-alikes). Compared in Python: SQLite folds the
    case of ASCII letters only."""
    wanted = _skeleton(username)
    return any(_skeleton(name) == wanted for name in User.objects.values_list("username", flat=True).iterator())


def invite(
    admin: User,
    *,
    username: str,
    email: str,
    role: str,
    site_url: str,
    full_name: str = "",
    origin: Origin = NO_ORIGIN,
) -> Invitation:
    """Create the account in the admin's clinic with no usable password, and send the set-password link. The full
    name is kept whole as typed (in first_name: get_full_name() gives it back; no guess at a family name's place)."""
    clinic = require_membership(admin, Role.ADMIN).clinic
    role = Role(role)  # ValueError for anything else
    username = User.normalize_username(username)  # NFKC, as create_user stores it: fullwidth letters are ASCII
    if _mixed_scripts(username):
        raise PeopleError(_("Use letters of one script in a username (a name mixing Latin with Cyrillic or Greek)."))
    if _taken(username):
        raise PeopleError(_("The username %(name)s is taken.") % {"name": repr(username)})
    try:
        with transaction.atomic():
            # no password: an unusable one
            user = User.objects.create_user(username=username, email=email, first_name=full_name.strip()[:150])
            Membership.objects.create(user=user, clinic=clinic, role=role)
            audit.record(
                admin,
                AuditAction.PERMISSION_CHANGE,
                user,
                {"change": "invite", "user": username, "role": role},
                origin=origin,
            )
    except IntegrityError as exc:
        raise PeopleError(_("The username %(name)s is taken.") % {"name": repr(username)}) from exc
    link = site_url.rstrip("/") + invitation_path(user)
    # In the clinic's language (the new member has chosen none), else the admin's page's.
    with translation.override(clinic.language or translation.get_language()):
        emailed = _mail(
            _("Invitation to %(clinic)s on the chest X-ray portal") % {"clinic": clinic.name},
            _("%(admin)s invited you as %(role)s.\nSet your password: %(link)s\n")
            % {"admin": admin.get_username(), "role": str(Role(role).label).lower(), "link": link},
            email,
        )
    return Invitation(user=user, link=link, emailed=emailed)


def set_role(admin: User, member: Membership, role: str, origin: Origin = NO_ORIGIN) -> None:
    _check_other(admin, member)
    role = Role(role)
    if member.role == role:
        return
    before = member.role
    with transaction.atomic():
        Membership.objects.filter(pk=member.pk).update(role=role)
        detail = {"change": "role", "user": member.user.username, "from": before, "to": role}
        audit.record(admin, AuditAction.PERMISSION_CHANGE, member.user, detail, origin=origin)
    member.role = role


@dataclass(frozen=True)
class Access:
    """What a member can do now that a deactivation stops: their live sessions, an API token, an invitation (a
    set-password link not used yet)."""

    sessions: int
    api_token: bool
    invited: bool

    def words(self) -> str:
        """What stops, in a sentence."""
        stops = [
            ngettext("%(count)d signed-in session end", "%(count)d signed-in sessions end", self.sessions)
            % {"count": self.sessions}
        ]
        stops.append(_("their API token stops working") if self.api_token else _("they have no API token"))
        if self.invited:
            stops.append(_("their invitation link stops working"))
        return "; ".join([*stops, _("they cannot log in until reactivated")])


def access_of(member: Membership) -> Access:
    user = member.user
    return Access(
        sessions=len(_sessions_of(user)),
        api_token=Token.objects.filter(user_id=user.pk).exists(),
        invited=not user.has_usable_password(),
    )


def set_active(admin: User, member: Membership, active: bool, origin: Origin = NO_ORIGIN) -> None:
    """Deactivated users cannot log in, and their sessions and API tokens stop working at once. Their sessions end
    for good: a reactivation does not bring back a login made before the deactivation (only a new login). An
    invitation not used yet is void for good too (a new unusable password changes the link's token): after a
    reactivation the admin issues a new link (Reset access)."""
    _check_other(admin, member)
    if member.user.is_active == active:
        return
    with transaction.atomic():
        User.objects.filter(pk=member.user_id).update(is_active=active)
        if not active:
            _end_sessions(member.user)
            _void_invitation(member.user)
        change = "reactivate" if active else "deactivate"
        audit.record(
            admin,
            AuditAction.PERMISSION_CHANGE,
            member.user,
            {"change": change, "user": member.user.username},
            origin=origin,
        )
    member.user.is_active = active


def _end_sessions(user: User) -> None:
    """Delete the user's sessions (the database's: SESSION_ENGINE is Django's default)."""
    Session.objects.filter(pk__in=_sessions_of(user)).delete()


def _sessions_of(user: User) -> list[str]:
    """The keys of the user's unexpired sessions. A session names its user only inside its signed data, so they are
    read: a few per member for a shift each, and a deactivation is rare."""
    user_id = str(user.pk)
    live = Session.objects.filter(expire_date__gt=timezone.now())
    return [s.pk for s in live.iterator() if s.get_decoded().get(SESSION_KEY) == user_id]


def _void_invitation(user: User) -> None:
    """A set-password link's token is made from the password's hash: a new unusable one voids the links issued."""
    if not user.has_usable_password():
        user.set_unusable_password()
        User.objects.filter(pk=user.pk).update(password=user.password)


def reset_access(admin: User, member: Membership, site_url: str, origin: Origin = NO_ORIGIN) -> Invitation:
    """A member who forgot their password or is locked out: lift the lockout and issue a new one-time link to
    set a password (e-mailed, and shown to the admin). The old password works until a new one is set."""
    _check_other(admin, member)
    user = member.user
    if not user.is_active:
        raise PeopleError(
            _("%(name)s is deactivated: reactivate them first, then reset their access.") % {"name": person_name(user)}
        )
    with transaction.atomic():
        lockout.unlock(user.username)
        audit.record(admin, AuditAction.UNLOCK, user, {"change": "reset access", "user": user.username}, origin=origin)
    link = site_url.rstrip("/") + invitation_path(user)
    # In the member's language, else the clinic's, else the admin's page's.
    with translation.override(member.language or member.clinic.language or translation.get_language()):
        emailed = _mail(
            _("Set your password on the chest X-ray portal"),
            _("%(admin)s issued you a new link to set your password: %(link)s\n")
            % {"admin": admin.get_username(), "link": link},
            user.email,
        )
    return Invitation(user=user, link=link, emailed=emailed)


def person_name(user: User) -> str:
    """A person as the pages name them: full name and username, or the username alone."""
    full = user.get_full_name()
    return f"{full} ({user.get_username()})" if full else user.get_username()


def _check_other(admin: User, member: Membership) -> None:
    if require_membership(admin, Role.ADMIN).clinic_id != member.clinic_id:
        raise PeopleError(_("That user is not in your clinic."))
    if member.user_id == admin.pk:
        raise PeopleError(_("You cannot change your own role or deactivate yourself; ask another clinic admin."))
