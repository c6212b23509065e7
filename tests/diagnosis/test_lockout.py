"""Issue 11 items 5 and 6: logins lock out after a few failures (per account and per address), audited, and the
clinic admin lifts it with a new set-password link; invalid API tokens are rate-limited; no self-service
password reset without e-mail, and no reset link in a production log."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from diagnosis.models import AuditAction, AuditEvent, Role
from tests.factories import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = 3
    cache.clear()


def _login(username: str, password: str, ip: str = "192.0.2.10", url: str = "/accounts/login/"):
    return Client(REMOTE_ADDR=ip).post(url, {"username": username, "password": password})


def test_an_account_locks_after_a_few_wrong_passwords_and_stays_locked(alice) -> None:
    answers = [_login("alice", "wrong").status_code for _ in range(3)]
    assert answers == [200, 200, 429]  # the third failure locks
    locked = _login("alice", "alice-pass-123", ip="192.0.2.99")  # even the right password, from elsewhere
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.LOCKOUT, username="alice").exists()


def test_an_address_locks_whatever_account_it_tries(alice, clinic_a) -> None:
    make_member("carol", clinic_a)
    for name in ("x1", "x2", "x3"):
        _login(name, "wrong", ip="198.51.100.7")
    assert _login("carol", "carol-pass-123", ip="198.51.100.7").status_code == 429
    assert _login("carol", "carol-pass-123", ip="198.51.100.8").status_code == 302


def test_django_admin_login_locks_too(admin_user) -> None:
    for _ in range(3):
        _login("admin", "wrong", url="/admin/login/")
    assert _login("admin", "password", url="/admin/login/", ip="192.0.2.50").status_code == 429


def test_the_clinic_admin_unlocks_and_gets_a_new_set_password_link(alice, clinic_a) -> None:
    admin = make_member("ann", clinic_a, Role.ADMIN)
    for _ in range(3):
        _login("alice", "wrong")
    client = Client()
    client.force_login(admin)
    r = client.post(f"/people/{alice.pk}/reset/")
    assert r.status_code == 200 and "/accounts/reset/" in r.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.UNLOCK, target_id=str(alice.pk)).exists()
    assert _login("alice", "alice-pass-123", ip="192.0.2.11").status_code == 302


def test_invalid_api_tokens_are_rate_limited(alice, settings) -> None:
    settings.API_BAD_TOKEN_LIMIT = 5
    client = APIClient(REMOTE_ADDR="203.0.113.5")
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    answers = [client.get("/api/v1/studies/").status_code for _ in range(7)]
    assert answers[:5] == [401] * 5 and answers[5:] == [429, 429]


def test_no_self_service_password_reset_without_email(alice, settings) -> None:
    assert not settings.EMAIL_HOST
    assert Client().get("/accounts/password_reset/").status_code == 404
    assert Client().post("/accounts/password_reset/", {"email": "alice@example.org"}).status_code == 404
    assert mail.outbox == []


def test_no_mail_goes_to_the_log_in_production() -> None:
    import subprocess
    import sys

    code = "from django.conf import settings; print(settings.EMAIL_BACKEND)"
    env = {"DJANGO_SETTINGS_MODULE": "xrayweb.settings", "DJANGO_SECRET_KEY": "x" * 60, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"], env=env, capture_output=True, text=True
    )
    assert out.stdout.strip() == "django.core.mail.backends.dummy.EmailBackend", out.stderr[-500:]
