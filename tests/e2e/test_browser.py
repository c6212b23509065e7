import os
import re
import time

import pytest

from tests import images

pytestmark = pytest.mark.browser


def _log_in(page, base: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/upload/$"))


def test_clinician_uploads_and_sees_the_result_without_reloading(  # type: ignore[no-untyped-def]
    page, live_server, start_worker, alice, tmp_path
) -> None:
    if not images.SHARED_DATA.exists():
        pytest.skip(images.NO_DATA_REASON)
    worker = start_worker()
    xray = tmp_path / "child-chest.jpeg"
    xray.write_bytes(images.real_radiograph("PNEUMONIA", 2))
    _log_in(page, live_server.url, "alice", "alice-pass-123")
    # Let the worker finish loading the model before timing an upload, as a running service would have.
    from tests.integration.conftest import wait_for

    wait_for(
        lambda: re.search(r"model \S+ loaded", worker.log.read_text(errors="replace")) is not None,
        90,
        "the worker to load the model",
        [worker.log],
    )

    page.set_input_files("input[name=images]", str(xray))
    started = time.monotonic()
    page.click("#analyse")
    page.wait_for_url(re.compile(r".*/studies/[0-9a-f-]{36}/$"))
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    elapsed = time.monotonic() - started
    print(f"\nupload-to-result in the browser: {elapsed:.2f} s")

    label = page.text_content("#label") or ""
    assert label in ("Normal", "Pneumonia")
    assert re.fullmatch(r"\d{1,3}%", page.text_content("#probability") or "")
    for img in ("#img-original", "#img-heatmap", "#img-overlay"):
        page.wait_for_function(
            f"document.querySelector('{img}').complete && document.querySelector('{img}').naturalWidth > 0"
        )
    if os.environ.get("E2E_SCREENSHOT"):
        page.screenshot(path=os.environ["E2E_SCREENSHOT"], full_page=True)

    page.click("text=History")
    row = page.locator("#history tbody tr", has_text="child-chest.jpeg")
    assert row.count() == 1
    assert label in (row.text_content() or "")
    assert page.locator("#history tbody tr img").first.evaluate("i => i.naturalWidth") > 0


def test_bad_file_shows_a_clear_error_in_the_page(page, live_server, alice, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image")
    _log_in(page, live_server.url, "alice", "alice-pass-123")
    page.set_input_files("input[name=images]", str(bad))
    page.click("#analyse")
    assert "notes.png: The file is not a JPEG or PNG image." in (page.text_content(".errorlist") or "")
