"""The Docker files ship no secrets and run what settings expect (`docker-compose config` and hadolint run in CI)."""

from pathlib import Path
from typing import Any

import yaml
from django.conf import settings as django_settings

from tests.test_settings import settings_source, variables_read

ROOT = Path(__file__).resolve().parents[1]
APP_SERVICES = ("migrate", "web", "inference", "maintenance", "flower")
LONG_RUNNING = ("proxy", "web", "inference", "maintenance", "flower")
NOT_FOR_PRODUCTION = {"DJANGO_DEBUG", "DJANGO_INSECURE_DEV_KEY"}


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_variable_settings_read_is_passed_to_the_app() -> None:
    passed = set(compose()["x-app-env"])
    read = variables_read(settings_source())
    assert read - NOT_FOR_PRODUCTION - passed == set()
    assert not NOT_FOR_PRODUCTION & passed


def test_no_password_in_the_database_url() -> None:
    env = compose()["x-app-env"]
    assert "@postgres" in env["DATABASE_URL"] and ":" not in env["DATABASE_URL"].split("//")[1].split("@")[0]
    assert env["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_services_have_healthchecks_and_no_hard_coded_concurrency() -> None:
    services = compose()["services"]
    for name in LONG_RUNNING:
        assert services[name].get("healthcheck"), name
    for name in APP_SERVICES:
        assert "--concurrency" not in " ".join(services[name].get("command", [])), name
    dockerfile_gpu = (ROOT / "Dockerfile.gpu").read_text()
    assert "--concurrency" not in dockerfile_gpu


def test_flower_requires_basic_auth() -> None:
    flower = compose()["services"]["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")


def test_images_leave_local_data_out_and_own_the_media_folder() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".data/", ".venv/", ".git/", ".env"} <= set(ignored)
    for name in ("Dockerfile", "Dockerfile.gpu"):
        text = (ROOT / name).read_text()
        assert "mkdir -p /data/media" in text and "chown -R 10001:10001 /data" in text, name
        assert "USER 10001" in text and "--require-hashes" in text, name


def test_web_is_reached_only_through_the_buffering_proxy_whose_body_limit_is_the_apps() -> None:
    """A red-team pass tied up gunicorn's threads with 40 slow request bodies: nginx reads each body whole first."""
    services = compose()["services"]
    assert "ports" not in services["web"] and services["proxy"]["ports"] == ["8000:8000"]
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    mount = services["proxy"]["volumes"][0]
    assert mount.startswith("./deploy/nginx.conf:")
    assert "set $web http://web:8000;" in conf and "proxy_pass $web;" in conf
    assert "proxy_request_buffering on;" in conf and "client_body_timeout 30s;" in conf
    size = conf.split("client_max_body_size ")[1].split(";")[0]
    assert size.endswith("g") and int(size[:-1]) * 2**30 == django_settings.MAX_REQUEST_BYTES  # the default
    assert compose()["x-app-env"]["AUDIT_TRUST_X_FORWARDED_FOR"] == "${AUDIT_TRUST_X_FORWARDED_FOR:-1}"
