import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "MAX_"))}
    return subprocess.run(
        [sys.executable, "-c", "import xrayweb.settings as s; print(s.DATABASES['default']['ENGINE'], s.DEBUG)"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_missing_secret_key_fails_loudly_in_production() -> None:
    result = _load_settings()
    assert result.returncode != 0 and "DJANGO_SECRET_KEY is not set" in result.stderr


def test_bad_values_fail_loudly() -> None:
    assert "is not a boolean" in _load_settings(DJANGO_SECRET_KEY="k", DJANGO_DEBUG="maybe").stderr
    assert "is not an integer" in _load_settings(DJANGO_SECRET_KEY="k", MAX_UPLOAD_BYTES="lots").stderr


def test_database_url_switches_the_database() -> None:
    result = _load_settings(DJANGO_SECRET_KEY="k", DATABASE_URL="postgres://u@db:5432/x")
    assert result.stdout.split() == ["django.db.backends.postgresql", "False"]
    assert _load_settings(DJANGO_SECRET_KEY="k").stdout.split()[0] == "django.db.backends.sqlite3"


def _probe(**env: str) -> list[str]:
    """The e-mail backend's module and the session length under `env`."""
    code = "import xrayweb.settings as s; print(s.EMAIL_BACKEND.rsplit('.', 2)[1], s.SESSION_COOKIE_AGE)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "SESSION_"))}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_email_host_switches_invitations_to_smtp() -> None:
    assert _probe(DJANGO_SECRET_KEY="k") == ["console", "43200"]
    assert _probe(DJANGO_SECRET_KEY="k", EMAIL_HOST="smtp.example.org", SESSION_SECONDS="600") == ["smtp", "600"]
