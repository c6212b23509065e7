"""Fixtures only; helpers live in tests/factories.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from django.contrib.auth.models import User

from diagnosis.models import Clinic
from tests.factories import make_member
from tests.needs import fail_the_skip


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (XRAY_REQUIRE_ALL=1) a skip is a failure: see tests/needs.py."""
    outcome: Any = yield
    fail_the_skip(outcome.get_result())


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Tests create many users; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_storage_pool() -> Iterator[None]:
    """A test that sets STORAGE_THREADS gets a pool of that size (diagnosis.result_files makes it on first use),
    shut down after it."""
    from diagnosis import result_files

    yield
    pool, result_files.pool.executor = result_files.pool.executor, None
    if pool is not None:
        pool.shutdown(wait=True)


@pytest.fixture(autouse=True)
def _broker_not_paused() -> Iterator[None]:
    """A test whose broker failed pauses sending (diagnosis.dispatch) for the next seconds: never for the next test."""
    from diagnosis import dispatch

    yield
    dispatch.pause.until = 0.0


@pytest.fixture(autouse=True)
def _celery_app_stays_current() -> Iterator[None]:
    """The project's code sends through `celery.current_app`: a test that made another Celery app current (its
    constructor does, unless set_as_current=False) fails here, and the project's app is current again for the next
    (CI's fixed order once sent every later integration test's studies to a stopped Redis that way)."""
    from celery import current_app

    from xrayweb.celery import app

    yield
    current = cast(Any, current_app)._get_current_object()  # the proxy's target (untyped in the stubs)
    if current is not app:
        app.set_current()
        pytest.fail(f"the test left Celery app {current.main!r} current instead of the project's")


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Path) -> Iterator[None]:
    """Every test writes its files to its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media"},
        },
    }
    yield


@pytest.fixture
def clinic_a(db: None) -> Clinic:
    return Clinic.objects.create(name="Clinic A", slug="a")


@pytest.fixture
def clinic_b(db: None) -> Clinic:
    return Clinic.objects.create(name="Clinic B", slug="b")


@pytest.fixture
def alice(clinic_a: Clinic) -> User:
    """A clinician of clinic A."""
    return make_member("alice", clinic_a)


@pytest.fixture
def bob(clinic_b: Clinic) -> User:
    """A clinician of clinic B: must never see clinic A's data."""
    return make_member("bob", clinic_b)
