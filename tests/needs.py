"""What a test needs from the machine it runs on (the training images in ../shared, a Debian package, PostgreSQL),
in one place: missing, the test is skipped with the reason; but where XRAY_REQUIRE_ALL=1 (.ci/run sets it) every
such need must be met, and a missing one fails the test instead, so that CI never counts a skip as a pass."""

from __future__ import annotations

import os
from typing import Any

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


def fail_the_skip(report: Any) -> None:
    """Where everything is required, a skipped test's report becomes a failure whatever skipped it (a need above,
    or a bare pytest.skip in a test that does not use one): CI's count of skips is then 0 by construction. An
    expected failure (xfail) is left alone."""
    if report.skipped and everything_required() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but {SWITCH} is set (nothing may be skipped here): {reason}"
