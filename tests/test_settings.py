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
