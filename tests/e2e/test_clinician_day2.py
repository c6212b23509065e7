"""Issue 27, the clinician's day, round two, in headless Chromium: study details never carry over to the next
patient, the batch view says what each study got and one true thing about its progress, a reviewer's zoom
survives the result's arrival (no reload), the call is on a phone's first screen, the two viewers of a comparison
can be linked, and printing in the dark theme uses the light palette. Then the study, upload and report pages at
375 and 1366 px, light and dark, with axe (E2E_SCREENSHOT_DIR keeps the screenshots)."""

from __future__ import annotations

import base64
import io
import re

import pytest

from diagnosis import intake
from diagnosis.models import Label, Review, Study
from diagnosis.study_details import StudyDetails
from diagnosis.validation import validate_upload
from tests import factories, images
from tests.e2e.test_clinician_day import (
    AXE,
    DROP,
    log_in,
    open_page,  # noqa: F401  (the fixture, for new_page)
    shot,
    sign_in,
    user,
    wait_image,
)

pytestmark = pytest.mark.browser
GOOD = base64.b64encode(images.png()).decode()
ALL_SENT = "(n) => document.querySelectorAll('#file-list li.sent, #file-list li.refused').length === n"


@pytest.fixture
def new_page(request):
    """new_page(width, height): a page of that size, its errors kept (the first browser pass's open_page)."""
    return request.getfixturevalue("open_page")


def upload_two(page, **details: str) -> None:
    page.evaluate(DROP, [[["first.png", GOOD], ["second.png", GOOD]]])
    for field, value in details.items():
        page.fill(f"#id_{field}", value)
    page.click("#analyse")
    page.wait_for_function(ALL_SENT, arg=2)


def test_the_details_of_one_upload_never_reach_the_next_patient(new_page, live_server, demo) -> None:
    """Two files for one child, then one file for the next: the next study has none of the first child's details
    (the trial found them still in the form, and Analyse gave them to the new study)."""
    page = new_page()
    log_in(page, live_server.url, "north-clinician", demo)
    upload_two(page, patient_ref="CHILD-1", age_years="3", clinical_note="cough")
    page.set_input_files("#id_images", files=[{"name": "next.png", "mimeType": "image/png", "buffer": images.png()}])
    page.click("#analyse")
    page.wait_for_url(re.compile(r".*/studies/[0-9a-f-]{36}/$"))
    nxt = Study.objects.get(original_name="next.png")
    assert (nxt.patient_ref, nxt.age_years, nxt.clinical_note) == ("", None, "")
    firsts = Study.objects.filter(original_name__in=["first.png", "second.png"])
    assert {(s.patient_ref, s.age_years, s.clinical_note) for s in firsts} == {("CHILD-1", 3, "cough")}
    assert not page.problems, page.problems


def test_the_batch_view_names_each_studys_details_and_one_true_progress(new_page, live_server, demo) -> None:
    page = new_page()
    log_in(page, live_server.url, "north-clinician", demo)
    upload_two(page, patient_ref="CHILD-2", age_years="4")
    for row in page.locator("#file-list li.sent").all():
        assert "Patient CHILD-2 · 4 years" in (row.locator(".details-got").text_content() or "")
    assert [page.input_value(f"#id_{f}") for f in ("patient_ref", "age_years", "clinical_note")] == ["", "", ""]
    assert "cleared for the next patient" in (page.text_content("#details-fate") or "")
    summary = page.text_content("#upload-summary") or ""
    assert summary == "2 accepted: 0 of 2 finished, 2 waiting for the model", summary
    shot(page, "upload-batch-waiting")

    first, second = Study.objects.filter(patient_ref="CHILD-2").order_by("original_name")
    factories.judge(first, Label.NORMAL, 0.66, threshold=0.696)
    factories.judge(second, Label.PNEUMONIA, 0.93)
    page.wait_for_function("() => document.getElementById('upload-summary').textContent.includes('all 2 finished')")
    assert page.text_content("#upload-summary") == "2 accepted: all 2 finished"
    badge = page.locator(f"#file-list li[data-study='{first.pk}'] .badge")
    assert badge.text_content() == "Normal · P(pneumonia) 66 % · borderline"
    assert badge.locator("abbr").get_attribute("title") == "probability of pneumonia"
    shot(page, "upload-batch-finished")

    # Kept on purpose: the box ticked, the kept values are shown, and the next upload has them.
    page.evaluate(DROP, [[["third.png", GOOD], ["fourth.png", GOOD]]])
    page.fill("#id_patient_ref", "CHILD-3")
    page.check("#id_keep_details")
    page.click("#analyse")
    page.wait_for_function(ALL_SENT, arg=2)
    assert page.input_value("#id_patient_ref") == "CHILD-3"
    assert "Kept for the next upload: Patient CHILD-3" in (page.text_content("#details-fate") or "")
    assert not page.problems, page.problems


def test_a_reviewers_zoom_survives_the_results_arrival(new_page, live_server, demo) -> None:
    """The reviewer's page reloaded itself about 0.2 s after the result swapped in, losing zoom and window/level."""
    queued = factories.study(user("north-clinician"))
    page = new_page()
    log_in(page, live_server.url, "north-reviewer", demo)
    page.goto(f"{live_server.url}/studies/{queued.pk}/")
    wait_image(page, "#viewer-current [data-image]")
    assert not page.is_visible("#review")
    page.evaluate("window.notReloaded = true")
    page.locator("#viewer-current [data-stage]").hover()
    page.mouse.wheel(0, -300)
    page.wait_for_function("() => Number(document.querySelector('#viewer-current').dataset.scale) > 1")
    page.keyboard.press("]")
    scale = page.get_attribute("#viewer-current", "data-scale")

    factories.judge(queued, Label.PNEUMONIA, 0.9)
    page.locator("#label").wait_for(timeout=15_000)
    page.wait_for_timeout(1500)  # the reload came about 0.2 s after the result
    assert page.evaluate("window.notReloaded === true"), "the page reloaded"
    assert page.get_attribute("#viewer-current", "data-scale") == scale
    assert page.input_value("#viewer-current [data-ctl=brightness]") == "110"
    assert page.is_visible("#review-form")
    assert page.text_content("label[for=id_decision_0]").strip() == "Agree → Pneumonia"
    page.keyboard.press("a")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Review saved" in (page.text_content(".messages") or "")
    assert Review.objects.get(study=queued).agrees
    assert not page.problems, page.problems


@pytest.mark.parametrize(("username", "compare"), [("north-clinician", False), ("north-reviewer", True)])
def test_the_call_is_on_a_phones_first_screen(new_page, live_server, demo, username: str, compare: bool) -> None:
    """At 390x844 the call began about 1,000 px down the page (two screens in compare mode)."""
    clinician = user("north-clinician")
    study = factories.judged_study(clinician, Label.NORMAL, 0.66, patient_ref="P-5", clinical_note="cough")
    other = factories.judged_study(clinician, Label.PNEUMONIA, 0.9, patient_ref="P-5")
    page = new_page(390, 844)
    log_in(page, live_server.url, username, demo)
    page.goto(f"{live_server.url}/studies/{study.pk}/" + (f"?compare={other.pk}" if compare else ""))
    for selector in ("#label", "#probability-line"):
        box = page.locator(selector).bounding_box()
        assert box and box["y"] + box["height"] <= 844, f"{selector} at {box} on a 844 px screen"
    shot(page, f"study-390-{username}{'-compare' if compare else ''}", full=False)
    assert not page.problems, page.problems


def test_the_two_viewers_of_a_comparison_can_be_linked(new_page, live_server, demo) -> None:
    clinician = user("north-clinician")
    study = factories.judged_study(clinician, Label.PNEUMONIA, 0.9, patient_ref="P-6")
    other = factories.judged_study(clinician, Label.NORMAL, 0.2, patient_ref="P-6")
    page = new_page()
    log_in(page, live_server.url, "north-clinician", demo)
    page.goto(f"{live_server.url}/studies/{study.pk}/?compare={other.pk}")
    wait_image(page, "#viewer-compare [data-image]")
    scale = "(id) => document.getElementById(id).dataset.scale"
    page.locator("#viewer-current [data-stage]").hover()
    page.mouse.wheel(0, -300)
    assert page.evaluate(scale, "viewer-compare") == "1.00"  # not linked: each viewer its own
    page.check("#link-viewers")
    assert page.evaluate(scale, "viewer-compare") == page.evaluate(scale, "viewer-current")  # aligned at once
    page.locator("#viewer-compare [data-stage]").hover()
    page.mouse.wheel(0, -300)  # zoom the other one: both follow
    zoomed = page.evaluate(scale, "viewer-compare")
    assert zoomed == "1.44" and page.evaluate(scale, "viewer-current") == zoomed  # 1.2 twice, once each
    page.locator("#viewer-compare [data-stage]").focus()
    page.keyboard.press("]")
    page.keyboard.press("ArrowLeft")
    assert page.input_value("#viewer-current [data-ctl=brightness]") == "110"
    layers = "(id) => document.querySelector(`#${id} [data-layer]`).style.transform"
    assert page.evaluate(layers, "viewer-current") == page.evaluate(layers, "viewer-compare")
    page.uncheck("#link-viewers")
    page.locator("#viewer-compare [data-stage]").focus()
    page.keyboard.press("0")  # unlinked: the reset is the compared viewer's alone
    assert page.evaluate(scale, "viewer-compare") == "1.00" and page.evaluate(scale, "viewer-current") == zoomed
    assert not page.problems, page.problems


def test_printing_in_the_dark_theme_uses_the_light_palette(browser, live_server, demo) -> None:
    study = factories.judged_study(user("north-clinician"), Label.NORMAL, 0.66, patient_ref="P-7")
    context = browser.new_context(viewport={"width": 1366, "height": 768}, color_scheme="dark")
    page = context.new_page()
    log_in(page, live_server.url, "north-clinician", demo)
    style = "([s, p]) => getComputedStyle(document.querySelector(s))[p]"
    for chosen in (None, "dark"):  # the system's dark setting, then the reader's choice
        if chosen:
            page.evaluate("(t) => localStorage.setItem('theme', t)", chosen)
        page.goto(f"{live_server.url}/studies/{study.pk}/report/")
        page.emulate_media(media="screen")
        assert page.evaluate(style, [".card", "backgroundColor"]) == "rgb(21, 26, 33)"  # the control: dark on screen
        page.emulate_media(media="print")
        assert page.evaluate(style, ["body", "backgroundColor"]) == "rgb(255, 255, 255)"
        assert page.evaluate(style, [".card", "backgroundColor"]) == "rgb(255, 255, 255)", chosen
        assert page.evaluate(style, [".calls > div", "backgroundColor"]) in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
        assert page.evaluate(style, ["h1", "color"]) == "rgb(0, 0, 0)"
        assert page.evaluate(style, [".label.NORMAL", "color"]) == "rgb(38, 115, 77)", chosen  # the light green
        assert page.evaluate(style, [".muted", "color"]) == "rgb(91, 103, 117)", chosen
        assert page.evaluate("() => getComputedStyle(document.documentElement).colorScheme") == "light"
    context.close()


def real_study(owner, label: str, **details: object) -> Study:
    """A study of a real radiograph of the training data where there is one (the screenshots), else a drawn one."""
    data = images.real_radiograph(label, 1) if images.SHARED_DATA.exists() else images.png()
    upload = validate_upload(f"child-{label.lower()}.jpeg", None, io.BytesIO(data))
    return intake.create_study(owner, upload, details=StudyDetails(**details))  # type: ignore[arg-type]


@pytest.mark.parametrize("width", [375, 1366])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_study_upload_and_report_pages_pass_axe(browser, live_server, demo, width: int, theme: str) -> None:
    """No sideways scroll, no page error, no serious or critical axe violation; the screenshots for docs/."""
    clinician = user("north-clinician")
    normal = factories.judge(
        real_study(clinician, "NORMAL", patient_ref="P-0042", age_years=3, projection="AP", clinical_note="Cough."),
        Label.NORMAL, 0.66, threshold=0.696, model_version="pneumonia-mobilenet025-ens2-v2",
    )  # fmt: skip
    pneumonia = factories.judge(real_study(clinician, "PNEUMONIA", patient_ref="P-0042"), Label.PNEUMONIA, 0.93)
    pages = {
        "north-clinician": {
            "upload": "/upload/",
            "study": f"/studies/{normal.pk}/",
            "study-compare": f"/studies/{normal.pk}/?compare={pneumonia.pk}",
            "report": f"/studies/{normal.pk}/report/",
        },
        "north-reviewer": {"study-reviewer": f"/studies/{pneumonia.pk}/"},
    }
    found = []
    for username, paths in pages.items():
        context = browser.new_context(viewport={"width": width, "height": 844 if width < 800 else 768},
                                      color_scheme=theme)  # fmt: skip
        page = context.new_page()
        page.problems = []
        page.on("pageerror", lambda e, p=page: p.problems.append(str(e)))
        sign_in(page, live_server.url, username)
        for name, path in paths.items():
            page.goto(live_server.url + path)
            if name.startswith("study"):
                wait_image(page, "#viewer-current [data-image]")
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{name} at {width} px, {theme}: {overflow} px of sideways scroll"
            page.evaluate(AXE.read_text())
            result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
            found += [f"{name} {width} {theme}: {v['id']} {[n['target'] for n in v['nodes']][:3]}"
                      for v in result["violations"] if v["impact"] in ("serious", "critical")]  # fmt: skip
            shot(page, f"{name}-{width}-{theme}", full=not name.startswith("study"))
        assert not page.problems, page.problems
        context.close()
    assert not found, "\n".join(found)
