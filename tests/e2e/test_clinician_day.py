"""Issue 13, the clinician's day, in headless Chromium: the viewer, the probability bar, the reviewer's loop
by keyboard, a revised review, drag-and-drop upload with progress and a live batch view, no sideways scroll
at 375 px, the dark theme, and the strict script policy (no inline script may come back)."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from diagnosis.models import Label, Review, Study
from diagnosis.site import card, monitoring
from tests import factories, images

pytestmark = pytest.mark.browser
AXE = Path(__file__).parent / "vendor" / "axe.min.js"


@pytest.fixture
def open_page(browser):
    """open_page(width, height, scheme) -> a page in a fresh context of that size and system colour scheme ("light"
    or "dark"); CSP reports and page errors are kept (a failed load with its address)."""
    contexts = []

    def make(width: int = 1366, height: int = 768, scheme: str = "light"):
        context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
        contexts.append(context)
        p = context.new_page()
        p.problems = []
        p.on(
            "console",
            lambda m: p.problems.append(f"{m.text} {m.location.get('url', '')}") if m.type == "error" else None,
        )
        p.on("pageerror", lambda e: p.problems.append(str(e)))
        return p

    yield make
    for c in contexts:
        c.close()


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/(upload|worklist)/$"))


def sign_in(page, base: str, username: str) -> None:
    """`username`'s session, as its cookie in the page's browser context, without the login form: for the walks over
    every page, which are about the pages (the form is driven by log_in everywhere else). A login through the form
    loads two pages more, about a second of CPU."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user(username))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": base}])


def shot(page, name: str, full: bool = True) -> None:
    if folder := os.environ.get("E2E_SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=full)


def user(name: str):
    from django.contrib.auth.models import User

    return User.objects.get(username=name)


def wait_image(page, selector: str) -> None:
    # A function, not an expression: Playwright would evaluate a string, which the page's CSP forbids.
    loaded = "(s) => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }"
    page.wait_for_function(loaded, arg=selector)


def test_viewer_zooms_pans_windows_and_toggles_the_heatmap(open_page, live_server, demo) -> None:
    study = factories.judged_study(user("north-clinician"), Label.PNEUMONIA, 0.9)
    page = open_page()
    log_in(page, live_server.url, "north-clinician", demo)
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    wait_image(page, "#viewer-current [data-image]")
    wait_image(page, "#viewer-current [data-heatmap-image]")
    stage = page.locator("#viewer-current [data-stage]")
    box = stage.bounding_box()
    assert box and box["y"] + box["height"] / 2 < 768, "the radiograph is above the fold at 1366x768"
    assert box["width"] > 700, box  # one large image, not three small panels
    shot(page, "study-1366", full=False)
    before = stage.screenshot()

    stage.hover()
    page.mouse.wheel(0, -300)  # zoom in at the pointer
    page.wait_for_function("() => Number(document.querySelector('#viewer-current').dataset.scale) > 1")
    zoomed = stage.screenshot()
    assert zoomed != before
    page.mouse.move(box["x"] + 300, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 380, box["y"] + 260, steps=4)
    page.mouse.up()
    assert "translate(" in page.get_attribute("#viewer-current [data-layer]", "style")
    assert stage.screenshot() != zoomed  # panned

    page.keyboard.press("0")  # reset by key
    assert page.get_attribute("#viewer-current", "data-scale") == "1.00"
    page.fill("#viewer-current [data-ctl=brightness]", "180")
    page.dispatch_event("#viewer-current [data-ctl=brightness]", "input")
    filt = page.evaluate("getComputedStyle(document.querySelector('#viewer-current [data-image]')).filter")
    assert "brightness(1.8)" in filt
    assert stage.screenshot() != before  # window/level changes the rendered image
    page.keyboard.press("]")
    assert page.input_value("#viewer-current [data-ctl=brightness]") == "190"

    heat = "#viewer-current [data-heatmap-image]"
    page.fill("#viewer-current [data-ctl=opacity]", "25")
    page.dispatch_event("#viewer-current [data-ctl=opacity]", "input")
    assert page.evaluate(f"getComputedStyle(document.querySelector('{heat}')).opacity") == "0.25"
    with_map = stage.screenshot()
    page.uncheck("#viewer-current [data-ctl=heatmap]")
    assert not page.is_visible(heat)
    assert stage.screenshot() != with_map
    page.keyboard.press("h")
    assert page.is_visible(heat)
    assert page.is_visible("#heatmap-legend .legend-bar")

    page.click("#viewer-current [data-act=reset]")
    assert page.input_value("#viewer-current [data-ctl=opacity]") == "60"
    assert not page.problems, page.problems  # no script error, no refused script


def test_probability_bar_marks_the_threshold_and_a_normal_call_has_no_map(open_page, live_server, demo) -> None:
    clinician = user("north-clinician")
    near = factories.judge(factories.study(clinician), Label.NORMAL, 0.004, threshold=0.42)
    page = open_page()
    log_in(page, live_server.url, "north-clinician", demo)
    page.goto(f"{live_server.url}/studies/{near.pk}/")
    assert page.text_content("#probability") == "< 1 %"
    assert page.text_content("#threshold") == "42 %"
    assert page.get_attribute(".prob-threshold", "style") == "left:42.0%"
    assert not page.is_visible("#borderline")
    expect(page.locator("#viewer-current [data-heatmap-image]")).to_have_count(0)  # no map on a normal call
    assert not page.is_visible("#viewer-current .heatmap-tools")
    assert "no map" in (page.text_content("#heatmap-legend") or "")

    close = factories.judge(factories.study(clinician), Label.PNEUMONIA, 0.47, threshold=0.42)
    page.goto(f"{live_server.url}/studies/{close.pk}/")
    assert page.text_content("#probability") == "47 %" and page.is_visible("#borderline")


def test_rejected_study_has_no_image_slots_or_review_box(open_page, live_server, demo) -> None:
    from diagnosis import jobs

    s = factories.study(user("north-clinician"))
    jobs.claim_job(s.job.pk)
    jobs.reject_job(s.job.pk, "This does not look like a chest radiograph.")
    page = open_page()
    log_in(page, live_server.url, "north-reviewer", demo)
    page.goto(f"{live_server.url}/studies/{s.pk}/")
    assert "Not judged: This does not look like a chest radiograph." in (page.text_content("#reason") or "")
    expect(page.locator("#review")).to_have_count(0)
    expect(page.locator("#review-form")).to_have_count(0)
    assert page.evaluate("[...document.images].every(i => i.getAttribute('src'))")  # no empty image slot
    wait_image(page, "#viewer-current [data-image]")


def test_save_and_next_through_three_studies_with_the_keyboard_only(open_page, live_server, demo) -> None:
    clinician = user("north-clinician")
    studies = [factories.judged_study(clinician, Label.PNEUMONIA, p, patient_ref=f"K-{i}") for i, p in
               enumerate((0.95, 0.85, 0.75))]  # fmt: skip
    factories.judged_study(clinician, Label.NORMAL, 0.1, patient_ref="other")  # filtered out below
    page = open_page()
    log_in(page, live_server.url, "north-reviewer", demo)
    page.goto(live_server.url + "/worklist/?label=PNEUMONIA")
    # Focus is on the first study's link: Enter opens it, no Tab needed.
    assert page.evaluate("document.activeElement.classList.contains('open')")
    page.keyboard.press("Enter")
    for i, s in enumerate(studies):
        page.wait_for_url(re.compile(rf".*/studies/{s.pk}/\?from=worklist&wl=label%3DPNEUMONIA$"))
        assert page.evaluate("document.activeElement.name") == "decision"  # focus where the reviewer works
        assert page.text_content("label[for=id_decision_1]").strip() == "Disagree → Normal"
        if i == 0:
            page.keyboard.press("?")
            assert page.is_visible("#help")
            shot(page, "study-help", full=False)
            page.keyboard.press("Escape")
        page.keyboard.press("d" if i == 1 else "a")
        page.keyboard.press("Enter")  # Save & next
    page.wait_for_url(re.compile(r".*/worklist/\?label=PNEUMONIA$"))
    assert "last study of this worklist" in (page.text_content(".messages") or "")
    expect(page.locator("#worklist tbody tr[data-study]")).to_have_count(0)
    finals = [Review.objects.get(study=s).final_label for s in studies]
    assert finals == [Label.PNEUMONIA, Label.NORMAL, Label.PNEUMONIA]

    # N and P move through the list without saving.
    page.goto(live_server.url + "/worklist/?reviewed=yes&sort=-probability")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*/studies/{studies[0].pk}/.*"))
    page.keyboard.press("n")
    page.wait_for_url(re.compile(rf".*/studies/{studies[1].pk}/.*"))
    page.keyboard.press("p")
    page.wait_for_url(re.compile(rf".*/studies/{studies[0].pk}/.*"))
    assert not page.problems, page.problems


def test_a_revised_review_keeps_its_note_and_decision(open_page, live_server, demo) -> None:
    from diagnosis import reviews

    s = factories.judged_study(user("north-clinician"), Label.PNEUMONIA, 0.8)
    reviews.review_study(user("north-reviewer"), s, agrees=False, note="Artefact, no consolidation.")
    page = open_page()
    log_in(page, live_server.url, "north-reviewer", demo)
    page.goto(f"{live_server.url}/studies/{s.pk}/")
    assert page.is_checked("input[name=decision][value=disagree]")
    assert page.input_value("textarea[name=note]") == "Artefact, no consolidation."
    page.click("#save-review")
    page.wait_for_url(re.compile(rf".*/studies/{s.pk}/$"))
    review = Review.objects.get(study=s)
    assert review.note == "Artefact, no consolidation." and not review.agrees


def test_a_colleagues_reading_saved_meanwhile_is_shown_in_sight_on_a_phone(open_page, live_server, demo) -> None:
    """A reviewer saves after a colleague did: nothing is saved, the message and the colleague's reading are shown,
    and on a phone the message is scrolled into sight and holds the focus (a browser pass found it 954 px down,
    below the radiograph, with the focus on the decision: Enter would have saved over the colleague's reading).
    Then a note refused for a control character takes the focus to the note itself."""
    from diagnosis import reviews

    s = factories.judged_study(user("north-clinician"), Label.PNEUMONIA, 0.8)
    page = open_page(390, 844)
    log_in(page, live_server.url, "north-reviewer", demo)
    page.goto(f"{live_server.url}/studies/{s.pk}/")
    reviews.review_study(user("north-admin"), s, agrees=False, note="Artefact.")  # while the page is open
    page.keyboard.press("a")
    page.fill("textarea[name=note]", "Right lower lobe.")
    page.click("#save-review")
    message = page.locator(".side .errorlist.nonfield")
    assert "north-admin saved a reading of this study (Normal)" in (message.text_content() or "")
    assert page.evaluate("() => document.activeElement.classList.contains('nonfield')")
    box = message.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 844  # in sight
    assert page.locator("#review-label").text_content() == "Normal"
    assert page.input_value("textarea[name=note]") == "Right lower lobe."
    assert Review.objects.get(study=s).note == "Artefact."
    page.evaluate("() => { document.querySelector('textarea[name=note]').value = 'a\\u0001b'; }")
    page.click("#save-review")  # a bad note: its error names the field, which gets the focus
    assert "Remove the control characters (U+0001)" in (page.locator("#id_note_error").text_content() or "")
    assert page.evaluate("() => document.activeElement.name") == "note"
    page.fill("textarea[name=note]", "Right lower lobe.")
    page.click("#save-review")  # having read it
    page.wait_for_url(re.compile(rf".*/studies/{s.pk}/$"))
    assert Review.objects.get(study=s).note == "Right lower lobe."
    own = ("status of 409", "status of 400")  # Chromium logs the 409 and 400 pages' own statuses
    problems = [p for p in page.problems if not any(o in p for o in own)]
    assert not problems, problems


DROP = """async ([files]) => {
  const dt = new DataTransfer();
  for (const [name, b64] of files) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], name, {type: name.endsWith('.png') ? 'image/png' : 'image/jpeg'}));
  }
  const zone = document.getElementById('dropzone');
  zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
  zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
}"""


def test_drag_and_drop_ten_files_with_progress_and_a_live_batch_view(open_page, live_server, demo) -> None:
    good = base64.b64encode(images.png()).decode()
    files = [[f"film-{i}.png", good] for i in range(9)] + [["empty.png", ""]]
    page = open_page()
    log_in(page, live_server.url, "north-clinician", demo)
    page.evaluate(DROP, [files])
    rows = page.locator("#file-list li")
    expect(rows).to_have_count(10)
    assert re.search(r"film-0\.png · \d+ KB", rows.nth(0).text_content() or "")
    page.fill("#id_patient_ref", "B-7")
    page.click("#analyse")
    assert page.is_disabled("#analyse")  # while it sends
    page.wait_for_function("() => document.querySelectorAll('#file-list li.sent, #file-list li.refused').length === 10")
    assert page.is_enabled("#analyse")
    expect(page.locator("#file-list li.sent")).to_have_count(9)  # the empty file took no other file with it
    refused = page.locator("#file-list li.refused")
    expect(refused).to_have_count(1)
    assert "empty.png" in (refused.text_content() or "")
    assert "empty" in (refused.locator(".error").text_content() or "").lower()
    assert page.evaluate("[...document.querySelectorAll('#file-list li.sent')].every(li => li.dataset.sent === '100')")
    shot(page, "upload-batch")

    # The batch view is live: a study judged now shows its result without a reload.
    page.evaluate("window.notReloaded = true")
    first = Study.objects.get(original_name="film-0.png", patient_ref="B-7")
    factories.judge(first, Label.PNEUMONIA, 0.93)
    row = page.locator(f"#file-list li[data-study='{first.pk}']")
    row.locator(".badge.PNEUMONIA").wait_for(timeout=15_000)
    assert "93 %" in (row.text_content() or "") and page.evaluate("window.notReloaded === true")
    wait_image(page, f"#file-list li[data-study='{first.pk}'] img")
    assert Study.objects.filter(patient_ref="B-7").count() == 9


PAGES = {
    "north-clinician": [
        "/upload/",
        "/history/",
        "/worklist/",
        "/dashboard/",
        "/studies/{study}/",
        "/studies/{study}/report/",
    ],
    "north-reviewer": ["/worklist/", "/studies/{study}/?from=worklist", "/history/", "/site/"],
    "north-admin": ["/people/", "/audit/", "/history/", "/worklist/", "/site/", "/dashboard/"],
}


def _seed() -> Study:
    clinician = user("north-clinician")
    factories.judged_study(clinician, Label.NORMAL, 0.2, patient_ref="P-1", clinical_note="cough " * 30)
    factories.study(clinician, name="a-very-long-file-name-of-a-chest-radiograph-2026-11-26.png")
    # Model at this site with figures, charts and a proposal; a week of healthy children at P 0.3 fires the
    # monitoring alerts the admin's banner and the dashboard's Model health show.
    factories.separable_site(user("north-admin"))
    for _ in range(60):
        factories.judge(factories.study(clinician), Label.NORMAL, 0.3, model_version=card.model_version())
    monitoring.run_daily()
    return factories.judged_study(clinician, Label.PNEUMONIA, 0.9, patient_ref="P-1", age_years=30)


@pytest.mark.parametrize("width", [375, 1366])
def test_no_page_scrolls_sideways(open_page, live_server, demo, width: int) -> None:
    study = _seed()
    for username, paths in PAGES.items():
        page = open_page(width, 800)
        sign_in(page, live_server.url, username)
        for path in ["/accounts/login/", *paths] if username == "north-admin" else paths:
            page.goto(live_server.url + path.format(study=study.pk))
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{username} {path} at {width} px: {overflow} px of sideways scroll"
            if width == 375:
                shot(page, f"375-{username}-{path.strip('/').replace('/', '-')[:30] or 'login'}")
        assert not page.problems, page.problems


@pytest.mark.parametrize(("width", "scheme"), [(1366, "light"), (1366, "dark"), (375, "light"), (375, "dark")])
def test_pages_have_no_serious_accessibility_violations(open_page, live_server, demo, width: int, scheme: str) -> None:
    """axe-core (npm, vendored for the tests only): zero serious or critical violations on every page of every role,
    light and dark (contrast is checked against each palette), on a desktop and a phone."""
    study = _seed()
    source = AXE.read_text()
    found = []
    for username, paths in PAGES.items():
        page = open_page(width, 800, scheme)
        sign_in(page, live_server.url, username)
        for path in paths:
            page.goto(live_server.url + path.format(study=study.pk))
            page.evaluate(source)  # evaluated by the test, not a page script: the page's CSP does not apply
            result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
            for v in result["violations"]:
                if v["impact"] in ("serious", "critical"):
                    where = [n["target"] for n in v["nodes"]][:3]
                    found.append(f"{scheme} {width} px {username} {path}: {v['id']} {v['help']} {where}")
    assert not found, "\n".join(found)


def test_dark_theme_follows_the_system_and_the_toggle(browser, live_server, demo) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, color_scheme="dark")
    page = context.new_page()
    log_in(page, live_server.url, "north-clinician", demo)
    bg = "getComputedStyle(document.body).backgroundColor"
    assert page.evaluate(bg) == "rgb(11, 14, 18)"  # the system's dark setting
    page.click("#theme-toggle")
    assert page.evaluate(bg) == "rgb(246, 248, 250)"
    page.reload()
    assert page.evaluate(bg) == "rgb(246, 248, 250)"  # the choice is remembered
    context.close()


def test_no_inline_script_runs_and_the_policy_would_catch_one(open_page, live_server, demo) -> None:
    """Every page's scripts are static files; the enforced policy refuses an inline script (the control)."""
    study = _seed()
    page = open_page()
    log_in(page, live_server.url, "north-admin", demo)
    for path in ["/upload/", "/history/", "/worklist/", "/dashboard/", "/people/", "/audit/",
                 f"/studies/{study.pk}/", f"/studies/{study.pk}/report/"]:  # fmt: skip
        response = page.goto(live_server.url + path)
        policy = response.headers.get("content-security-policy", "")
        assert re.search(r"script-src 'self'(;|$)", policy), policy
        inline = page.evaluate("[...document.scripts].filter(s => !s.src).length")
        handlers = page.evaluate(
            "[...document.querySelectorAll('*')]"
            ".filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length"
        )
        assert inline == 0 and handlers == 0, path
    assert not page.problems, page.problems

    # The control: the same page with an inline script added is refused by the browser, so a template that
    # brings one back breaks its page (and the tests above, which fail on any console error).
    def with_inline(route):
        r = route.fetch()
        body = r.text().replace("</body>", "<script>window.inlineRan = true</script></body>")
        route.fulfill(response=r, body=body)

    page.route(re.compile(r".*/history/$"), with_inline)
    page.goto(live_server.url + "/history/")
    assert page.evaluate("window.inlineRan === undefined")
    assert any("Content Security Policy" in p for p in page.problems), page.problems
