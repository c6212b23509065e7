import csv
import io
import os
import re

import pytest
from playwright.sync_api import expect

from diagnosis.models import Study
from tests import factories, images
from tests.needs import need_training_images

pytestmark = pytest.mark.browser


def _log_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/(upload|worklist)/$"))


def _shot(page, name: str) -> None:
    """E2E_SCREENSHOT_DIR=folder saves full-page screenshots of the pages the tests visit."""
    if folder := os.environ.get("E2E_SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def _wait_for_image(page, selector: str) -> None:
    # A function, not a string expression: the page's CSP (script-src 'self') forbids evaluating strings.
    page.wait_for_function(
        "(s) => { const i = document.querySelector(s); return !!i && i.complete && i.naturalWidth > 0; }", arg=selector
    )


def test_clinician_uploads_and_sees_the_result_without_reloading(
    page, live_server, start_worker, demo, tmp_path
) -> None:
    need_training_images()
    xray = tmp_path / "child-chest.jpeg"
    xray.write_bytes(images.real_radiograph("PNEUMONIA", 2))
    _log_in(page, live_server.url, "north-clinician", demo)

    page.set_input_files("input[name=images]", str(xray))
    page.fill("#id_patient_ref", "P-0042")
    page.fill("#id_age_years", "40")  # an adult: outside the model's population, warned at once
    assert page.is_visible("#age-warning")
    page.fill("#id_age_years", "3")
    assert not page.is_visible("#age-warning")
    page.select_option("#id_projection", "AP")
    # No worker runs yet: the study page renders while the job is queued, so only its polling can show a result.
    page.click("#analyse")
    page.wait_for_url(re.compile(r".*/studies/[0-9a-f-]{36}/$"))
    page.wait_for_load_state("load")
    assert page.text_content("#status-badge") == "queued"
    assert page.is_visible("#progress-box") and not page.is_visible("#result")
    page.evaluate("window.loadedOnce = true")  # a reload or a navigation would lose this
    worker = start_worker()
    try:
        page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    except Exception as exc:
        job = Study.objects.get(pk=page.url.rstrip("/").rsplit("/", 1)[1]).job
        log = worker.log.read_text(errors="replace")[-3000:]
        raise AssertionError(f"no result in the page; the job is {job.status} {job.reason}\n{log}") from exc
    assert page.evaluate("window.loadedOnce === true"), "the page reloaded to show the result"
    assert not page.is_visible("#progress-box"), worker.log.read_text()[-2000:]

    label = page.text_content("#label") or ""
    assert label in ("Normal", "Pneumonia")
    assert re.fullmatch(r"(< 1|> 99|\d{1,2}) %", page.text_content("#probability") or "")
    _wait_for_image(page, "#viewer-current [data-image]")
    if label == "Pneumonia":  # the map arrives with the result, without a reload; a normal call has none
        _wait_for_image(page, "#viewer-current [data-heatmap-image]")
    assert page.text_content("#patient-ref") == "P-0042"
    assert not page.is_visible("#population-warning")
    if os.environ.get("E2E_SCREENSHOT"):
        page.screenshot(path=os.environ["E2E_SCREENSHOT"], full_page=True)

    page.click("text=History")
    row = page.locator("#history tbody tr", has_text="child-chest.jpeg")
    expect(row).to_have_count(1)
    assert label in (row.text_content() or "")
    _wait_for_image(page, "#history tbody tr img")
    assert "not reviewed" in (row.text_content() or "")


def test_bad_file_shows_a_clear_error_in_the_page(page, live_server, demo, tmp_path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image")
    _log_in(page, live_server.url, "north-clinician", demo)
    page.set_input_files("input[name=images]", str(bad))
    page.click("#analyse")
    refused = page.locator("#file-list li.refused")
    refused.wait_for()
    assert "notes.png" in (refused.text_content() or "")
    assert refused.locator(".error").text_content() == "The file is not a JPEG or PNG image."


def test_reviewer_reviews_from_the_worklist(page, live_server, demo) -> None:
    from django.contrib.auth.models import User

    clinician = User.objects.get(username="north-clinician")
    likely = factories.judged_study(clinician, "PNEUMONIA", 0.97, patient_ref="P-1", age_years=30)
    factories.judged_study(clinician, "NORMAL", 0.10, patient_ref="P-2")
    factories.judged_study(User.objects.get(username="river-clinician"), "PNEUMONIA", 0.99, patient_ref="R-9")
    _log_in(page, live_server.url, "north-reviewer", demo)
    page.click("nav >> text=Worklist")
    rows = page.locator("#worklist tbody tr")
    expect(rows).to_have_count(2)  # the other clinic's study is not there
    assert "P-1" in (rows.nth(0).text_content() or "") and "P-2" in (rows.nth(1).text_content() or "")
    _shot(page, "worklist")

    rows.nth(0).locator("a.open").click()
    page.wait_for_url(re.compile(rf".*/studies/{likely.pk}/\?from=worklist&wl=$"))
    assert "30 years old" in (page.text_content("#population-warning") or "")
    page.check("input[name=decision][value=disagree]")
    page.fill("textarea[name=note]", "No consolidation; artefact.")
    page.click("#back-to-worklist")  # save & next is tested in test_clinician_day.py; here: save, then back
    page.wait_for_url(re.compile(r".*/worklist/$"))
    expect(page.locator("#worklist tbody tr")).to_have_count(2)  # not saved: still unreviewed
    rows.nth(0).locator("a.open").click()
    page.check("input[name=decision][value=disagree]")
    page.fill("textarea[name=note]", "No consolidation; artefact.")
    page.click("#save-review")
    page.wait_for_url(re.compile(rf".*/studies/{likely.pk}/\?from=worklist&wl=$"))
    page.click("#back-to-worklist")
    expect(page.locator("#worklist tbody tr")).to_have_count(1)  # reviewed studies leave the default worklist

    page.select_option("#id_reviewed", "yes")
    page.select_option("#id_disagreement", "yes")
    page.click("#worklist-filters button")
    row = page.locator("#worklist tbody tr")
    expect(row).to_have_count(1)
    assert "disagrees: Normal" in (row.text_content() or "")
    row.locator("a.open").click()
    assert page.text_content("#label") == "Pneumonia" and page.text_content("#review-label") == "Normal"
    assert "disagrees" in (page.text_content("#review-agreement") or "")
    _shot(page, "study-reviewed")

    page.click("nav >> text=Dashboard")
    assert (page.text_content("#stat-coverage") or "").startswith("50%")  # one of the two judged studies
    assert page.text_content("#stat-accuracy") == "0.000"  # the one review disagreed with the model
    _shot(page, "dashboard")
    page.go_back()

    page.click("#report-link")
    for img in page.locator(".images img").all():
        img.wait_for(state="visible")
    _wait_for_image(page, ".images figure:last-child img")
    _shot(page, "report")
    page.emulate_media(media="print")
    assert not page.is_visible("header")  # the print stylesheet hides navigation and buttons
    _shot(page, "report-print")
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1  # prints on one page


def test_clinic_admin_sees_the_audit_entries(page, live_server, demo, tmp_path) -> None:
    from django.contrib.auth.models import User

    study = factories.judged_study(User.objects.get(username="north-clinician"))
    _log_in(page, live_server.url, "north-reviewer", demo)
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    page.click("#logout")
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=username]", "north-admin")
    page.fill("input[name=password]", "wrong password")
    page.click("input[type=submit]")
    _log_in(page, live_server.url, "north-admin", demo)

    page.click("nav >> text=Audit")
    _shot(page, "audit")
    table = page.text_content("#audit") or ""
    for expected in ("Upload", "View study", "Login", "Logout", "Failed login"):
        assert expected in table, expected
    assert "View file" not in table  # the images the study page showed are its opening, not rows of their own
    assert "north-reviewer" in table and "127.0.0.1" in table
    page.select_option("#id_action", "view_study")
    page.click("form.filters button")
    rows = page.locator("#audit tbody tr.audit-row")
    expect(rows).to_have_count(1)
    assert "north-reviewer" in (rows.first.text_content() or "")

    with page.expect_download() as download:
        page.click("#export-csv")
    download.value.save_as(tmp_path / "audit.csv")
    csv_text = (tmp_path / "audit.csv").read_text("utf-8-sig")
    assert next(csv.reader(io.StringIO(csv_text)))[:3] == ["time", "user", "action"]  # every cell quoted
    assert "view_study" in csv_text and "login_failed" not in csv_text  # the export keeps the filter

    page.click("nav >> text=Audit")
    assert "Export" in (page.text_content("#audit") or "")  # the export itself is audited
