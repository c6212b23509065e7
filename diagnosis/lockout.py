"""Login lockout (django-axes): per account and per address after LOGIN_FAILURE_LIMIT failures, audited, and
lifted by the clinic admin (people.reset_access) or after LOGIN_LOCKOUT_MINUTES."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.signals import user_locked_out
from axes.utils import reset
from django.dispatch import receiver
from django.http import HttpRequest

from diagnosis import audit
from diagnosis.audit import Origin
from diagnosis.models import AuditAction


class LockoutBackend(AxesStandaloneBackend):
    """Axes for logins over HTTP. authenticate() without a request (a management command, a test client's
    login()) is not an HTTP login attempt, so axes has nothing to count and lets the next backend decide."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> Any:  # fmt: skip
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


@receiver(user_locked_out)
def on_locked_out(sender: Any, request: HttpRequest, username: str | None = None, **kwargs: Any) -> None:
    name = username or ""
    audit.record(
        None, AuditAction.LOCKOUT, origin=Origin.of(request), username=name, clinic=audit.clinic_of_username(name)
    )


def unlock(username: str) -> int:
    """Forget the failed logins of `username` (the lockout ends); the number of records removed."""
    return int(reset(username=username))
