"""Issue 29 in a real Chromium: every page of every role in Vietnamese (the browser asks for vi; the demo clinics
set no language of their own), at a phone's 375 px and a desktop's 1366 px: no sideways scroll, no English left in
what the page shows (names, the product name, units and codes apart), and the report still prints on one A4 page."""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_clinician_day import PAGES, _seed, log_in, shot, sign_in

# Words of the English interface that are not also Vietnamese syllables written without marks (so "in", "to",
# "do", "an" and the like are left out: "In" is Vietnamese for Print). Matched as whole words, any case.
ENGLISH = {
    "the", "and", "of", "for", "with", "from", "this", "your", "are", "is", "was", "has", "have", "not", "what",
    "when", "which", "will", "can", "more", "than", "below", "above", "study", "studies", "patient", "upload",
    "history", "worklist", "dashboard", "review", "reviewed", "reviewer", "sign", "password", "download", "export",
    "probability", "threshold", "borderline", "clinic", "report", "print", "search", "status", "queued", "running",
    "failed", "refused", "confirm", "override", "save", "next", "previous", "heatmap", "years", "file", "files",
    "validation", "people", "audit", "normal", "pneumonia", "date", "time", "zone", "language", "settings", "page",
    "show", "hide", "none", "all", "any", "agree", "agrees", "disagrees", "pending", "sent", "model", "calls",
}  # fmt: skip
# What the seeded data and the demo set-up put on the pages: names and free text a user typed, not the interface.
DATA = [
    r"Northside Clinic", r"Riverside Clinic", r"north-(clinician|reviewer|admin)", r"river-(clinician|reviewer|admin)",
    r"[\w.-]+@example\.org", r"a-very-long-file-name-of-a-chest-radiograph-2026-11-26\.png", r"\bcough\b",
    r"[\w-]+\.(png|jpe?g|dcm)\b", r"X-ray service", r"Grad-CAM",
    r"\b[A-Z][A-Za-z]+/[\w/+-]+",  # IANA zone names (Europe/Isle_of_Man)
    r"\btest-model\b", r"\bpneumonia-mobilenet025-ens2-v2\b",  # model version ids: the card's, the test model's
]  # fmt: skip


def english_left(text: str) -> list[str]:
    """The English interface words in `text` once the data is taken out, each with a little context."""
    for pattern in DATA:
        text = re.sub(pattern, " ", text, flags=re.IGNORECASE)
    found = []
    for match in re.finditer(r"[A-Za-z]+", text):
        if match.group().lower() in ENGLISH:
            found.append(text[max(0, match.start() - 25) : match.end() + 25].replace("\n", " "))
    return found


def test_the_detector_finds_english_and_spares_vietnamese_and_data() -> None:
    assert english_left("Tải lên phim X-quang ngực · In phiếu kết quả · Northside Clinic · cough cough") == []
    assert english_left("Xác suất viêm phổi: 69,6 % · Upload history") != []


@pytest.fixture
def open_vi(browser):
    """open_vi(width, locale="vi-VN") -> a page whose browser asks for that language (Accept-Language)."""
    contexts = []

    def make(width: int, locale: str = "vi-VN"):
        context = browser.new_context(viewport={"width": width, "height": 800}, locale=locale)
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        return page

    yield make
    for c in contexts:
        c.close()


@pytest.mark.parametrize("width", [375, 1366])
def test_every_page_of_every_role_in_vietnamese(open_vi, live_server, demo, width: int) -> None:
    study = _seed()
    problems: list[str] = []
    # The shared walk's pages, and the admin's clinic settings and a page that does not exist.
    pages = {**PAGES, "north-admin": [*PAGES["north-admin"], "/clinic/", "/no-such-page/"]}
    for username, paths in pages.items():
        page = open_vi(width)
        page.goto(live_server.url + "/accounts/login/")
        assert page.get_attribute("html", "lang") == "vi"  # the login page follows the browser
        problems += [f"{username} login: {w}" for w in english_left(page.inner_text("body"))]
        sign_in(page, live_server.url, username)
        for path in paths:
            page.goto(live_server.url + path.format(study=study.pk))
            page.wait_for_load_state("networkidle")
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if overflow > 0:
                problems.append(f"{username} {path} at {width} px: {overflow} px of sideways scroll")
            problems += [f"{username} {path}: …{w}…" for w in english_left(page.inner_text("body"))]
            shot(page, f"vi-{width}-{username}-{path.strip('/').replace('/', '-')[:30]}", full=False)
        problems += page.problems
    assert not problems, "\n".join(problems)


def test_the_report_prints_on_one_a4_page_in_vietnamese(open_vi, live_server, demo) -> None:
    study = _seed()
    page = open_vi(1366)
    log_in(page, live_server.url, "north-clinician", demo)
    page.goto(f"{live_server.url}/studies/{study.pk}/report/")
    page.wait_for_load_state("networkidle")
    assert "Viêm phổi" in page.inner_text("body")
    page.emulate_media(media="print")
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1


def test_the_switcher_changes_the_language_and_it_stays_chosen(open_vi, live_server, demo) -> None:
    """An English browser: the header's Tiếng Việt switches the page at once, the next pages stay in it, the login
    page after signing out too (the cookie), and a new browser asking for English gets it after signing in (saved
    for the account). English again the same way."""
    page = open_vi(1366, "en-US")
    log_in(page, live_server.url, "north-clinician", demo)
    assert page.get_attribute("html", "lang") == "en" and "Upload" in page.inner_text("header")
    page.get_by_role("button", name="Tiếng Việt").click()
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "vi" and "Tải lên" in page.inner_text("header")
    assert page.url.endswith("/upload/")  # back on the page the switch was made on
    page.goto(live_server.url + "/history/")
    assert page.get_attribute("html", "lang") == "vi"
    page.click("#logout")
    page.goto(live_server.url + "/accounts/login/")
    assert page.get_attribute("html", "lang") == "vi"
    elsewhere = open_vi(375, "en-US")  # another device, a browser in English, no cookie
    log_in(elsewhere, live_server.url, "north-clinician", demo)
    assert elsewhere.get_attribute("html", "lang") == "vi" and not english_left(elsewhere.inner_text("body"))
    elsewhere.get_by_role("button", name="English").click()
    elsewhere.wait_for_load_state()
    assert elsewhere.get_attribute("html", "lang") == "en" and "Upload" in elsewhere.inner_text("header")
