"""Issue 11 item 12: a Content-Security-Policy, HSTS with secure cookies, a clean `check --deploy` for the
documented production environment, and a generated secret key long enough for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from xrayweb.launch import persistent_secret

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy() -> None:
    r = Client().get("/accounts/login/")
    enforced = r["Content-Security-Policy"]
    assert "default-src 'self'" in enforced and "object-src 'none'" in enforced
    assert "frame-ancestors 'none'" in enforced
    # Scripts come from the static files only (issue 13 moved them out of the templates): enforced, no
    # 'unsafe-inline' for scripts, and no report-only copy left behind.
    scripts = enforced.split("script-src")[1].split(";")[0]
    assert scripts.strip() == "'self'", enforced
    assert "Content-Security-Policy-Report-Only" not in r


def _deploy_env(**extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SECRET_KEY": persistent_secret(Path(os.environ.get("TMPDIR", "/tmp")) / "deploy-key", 64, 50),
        "DJANGO_SECURE_COOKIES": "1",
        "DJANGO_ALLOWED_HOSTS": "xray.example.org",
        "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3",
        **extra,
    }


def test_check_deploy_is_clean_for_the_documented_production_environment() -> None:
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_deploy_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_secure_cookies_turn_on_hsts() -> None:
    code = "from django.conf import settings as s; print(s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT)"
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT, env={**_deploy_env(), "DJANGO_SETTINGS_MODULE": "xrayweb.settings"}, capture_output=True, text=True,
    )  # fmt: skip
    assert out.stdout.split() == ["31536000", "True"], out.stderr[-500:]


def test_the_generated_secret_key_is_long_enough(tmp_path: Path) -> None:
    short = tmp_path / "secret_key"
    short.write_text("x" * 43)  # what the launcher used to make: Django's W009 fires under 50 characters
    key = persistent_secret(short, 64, min_length=50)
    assert len(key) >= 50 and len(set(key)) >= 5


@pytest.mark.django_db
def test_the_api_docs_page_loads_its_scripts_from_files_so_the_strict_policy_allows_them() -> None:
    # SpectacularSwaggerView inlines its initialiser, which `script-src 'self'` blocks: the page was blank.
    import re

    response = Client().get("/api/v1/docs/")
    assert response.status_code == 200
    scripts = re.findall(r"<script([^>]*)>", response.content.decode())
    assert scripts and all("src=" in attributes for attributes in scripts)
    assert "'unsafe-inline'" not in response["Content-Security-Policy"].split("script-src")[1].split(";")[0]


@pytest.mark.django_db
def test_a_host_outside_the_allowed_hosts_gets_a_400_page_not_a_500(settings) -> None:
    """The web healthcheck counts a 400 as alive. The 400 page's layout read request.user, which a request refused
    for its Host (before authentication) does not have: a 500, found by a review before it shipped."""
    settings.ALLOWED_HOSTS = ["xray.example.org"]
    r = Client(HTTP_HOST="127.0.0.1:8000", raise_request_exception=False).get("/accounts/login/")
    assert r.status_code == 400 and "could not be read" in r.content.decode()
