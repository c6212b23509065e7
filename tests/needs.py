"""What a test needs from the machine it runs on (the training images in ../shared, a Debian package, PostgreSQL),
in one place: missing, the test is skipped with the reason; but where XRAY_REQUIRE_ALL=1 (.ci/run sets it) every
such need must be met, and a missing one fails the test instead, so that CI never counts a skip as a pass."""

from __future__ import annotations

import os

import pytest

SWITCH = "XRAY_REQUIRE_ALL"


def everything_required() -> bool:
    return os.environ.get(SWITCH, "").strip() not in ("", "0")


def need(condition: bool, reason: str) -> None:
    """Go on when `condition` holds; else skip with `reason`, or fail where everything is required."""
    __tracebackhide__ = True  # the report names the test that needs it, not this line
    if condition:
        return
    if everything_required():
        pytest.fail(f"{reason} ({SWITCH} is set: this machine must have it)", pytrace=False)
    pytest.skip(reason)


def need_training_images() -> None:
    __tracebackhide__ = True
    from tests import images

    need(images.SHARED_DATA.exists(), images.NO_DATA_REASON)


def need_postgresql() -> None:
    """Concurrency tests: SQLite serialises every writer, so a lock or a conditional update proves nothing there."""
    __tracebackhide__ = True
    from django.db import connection

    need(connection.vendor == "postgresql", "a concurrency test: it needs PostgreSQL (DATABASE_URL)")
