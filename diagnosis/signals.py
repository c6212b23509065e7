"""Logins, logouts and failed logins go to the audit trail (Django's auth signals carry the request)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from diagnosis import audit
from diagnosis.audit import Origin
from diagnosis.models import AuditAction


@receiver(user_logged_in)
def on_login(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    audit.record(user, AuditAction.LOGIN, origin=Origin.of(request))


@receiver(user_logged_out)
def on_logout(sender: Any, request: HttpRequest | None, user: User | None, **kwargs: Any) -> None:
    if user is not None:
        audit.record(user, AuditAction.LOGOUT, origin=Origin.of(request))


@receiver(user_login_failed)
def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username", ""))
    audit.record(
        None,
        AuditAction.LOGIN_FAILED,
        origin=Origin.of(request),
        username=username,
        clinic=audit.clinic_of_username(username),
    )
