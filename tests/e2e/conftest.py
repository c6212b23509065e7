from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from tests.integration.conftest import redis_url, start_worker, wait_for  # noqa: F401  (the first two: fixtures reused)

# Debian's chromium-headless-shell where it is installed (.ci/run installs it): the same Chromium release, built
# from the same Debian source package, without the desktop browser's layers, which headless pages never use; it is
# what Playwright itself runs for headless pages. The browser tests took 29 % less CPU with it (113 s against 160 s,
# tests/e2e on 2 cores). Debian's full chromium otherwise; CHROMIUM_PATH names another.
CHROMIUM = (
    os.environ.get("CHROMIUM_PATH")
    or shutil.which("chromium-headless-shell")
    or shutil.which("chromium")
    or "/usr/bin/chromium"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium-headless-shell or chromium (see .ci/run)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(autouse=True)
def _pages_closed_before_the_database_is_emptied(browser: Any, transactional_db: None) -> Iterator[None]:
    """Every browser context a test opened (by a fixture or by hand) is closed when it ends, before the test database
    is emptied: a page left polling the live server once deadlocked the emptying (TRUNCATE) in a full run."""
    yield
    for context in list(browser.contexts):
        context.close()
    _requests_in_flight_finished()


def _requests_in_flight_finished(timeout: float = 10.0) -> None:
    """On PostgreSQL, until no other session works in this test database: a request the live server was still
    serving for a page just closed (a write's foreign-key checks lock the rows they name: the deadlock's RowShareLock)
    once deadlocked the emptying, which locks every table (CI: "deadlock detected" at the teardown of a test that had
    just uploaded)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    busy = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND state IN ('active', 'idle in transaction')"
    )
    with connection.cursor() as cursor:

        def none_busy() -> bool:
            cursor.execute(busy)
            return cursor.fetchone() == (0,)

        with contextlib.suppress(AssertionError):  # still busy after `timeout`: the emptying then says why
            wait_for(none_busy, timeout, "the live server's requests to end")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    yield p
    context.close()


DEMO_PASSWORD = "demo-pass-4821"


@pytest.fixture
def demo(transactional_db: None) -> str:
    """The documented demo set-up: two clinics with a clinician, a reviewer and an admin each."""
    from django.core.management import call_command

    call_command("create_demo_clinics", password=DEMO_PASSWORD)
    return DEMO_PASSWORD
