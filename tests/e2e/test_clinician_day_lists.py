"""Issue 27, in headless Chromium: what only a browser shows of the lists, the dashboard, People and the audit trail.
The worklist's filters fold away on a phone, the dashboard's chart text is readable there, the People table keeps
its distance from the Invite card, no table header is empty (axe), and a study page's own images (which the browser
asks for as images) are part of its opening in the audit trail, not rows of their own."""

from __future__ import annotations

import pytest

from diagnosis.models import AuditAction, AuditEvent, Label
from tests import factories
from tests.e2e.test_clinician_day import AXE, log_in, user, wait_image

pytestmark = pytest.mark.browser
PHONE, DESK = (390, 844), (1366, 768)


@pytest.fixture
def sized(browser):
    """sized(width, height) -> a page in a fresh browser context of that size."""
    contexts = []

    def make(width: int, height: int):
        contexts.append(browser.new_context(viewport={"width": width, "height": height}))
        return contexts[-1].new_page()

    yield make
    for context in contexts:
        context.close()


def _seed(n: int = 3) -> None:
    for i in range(n):
        factories.judged_study(user("north-clinician"), Label.PNEUMONIA, 0.9 - i / 10, patient_ref=f"W-{i}")


def test_item10_the_worklist_filters_fold_away_on_a_phone(sized, live_server, demo) -> None:
    _seed()
    page = sized(*PHONE)
    log_in(page, live_server.url, "north-reviewer", demo)
    page.goto(live_server.url + "/worklist/")
    assert not page.is_visible("#worklist-filters"), "the filters fill the phone's first screen"
    first_row = page.locator("#worklist tbody tr").first.bounding_box()
    assert first_row and first_row["y"] < PHONE[1], first_row  # the first study is on the first screen
    page.click("#worklist-filter-box summary")
    assert page.is_visible("#worklist-filters select[name=sort]")
    desk = sized(*DESK)
    log_in(desk, live_server.url, "north-reviewer", demo)
    desk.goto(live_server.url + "/worklist/")
    assert desk.is_visible("#worklist-filters") and not desk.is_visible("#worklist-filter-box summary")


def test_item10_dashboard_chart_text_is_readable_on_a_phone(sized, live_server, demo) -> None:
    _seed()
    page = sized(*PHONE)
    log_in(page, live_server.url, "north-clinician", demo)
    page.goto(live_server.url + "/dashboard/")
    heights = page.eval_on_selector_all(
        "svg.chart text", "texts => texts.map(t => t.getBoundingClientRect().height).filter(h => h > 0)"
    )
    print(f"chart text at 390 px: {min(heights):.1f} to {max(heights):.1f} px high")
    assert heights and min(heights) >= 10, f"chart text {min(heights):.1f} px high at 390 px"
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{overflow} px of sideways scroll"  # the chart scrolls in its own box, not the page


def test_item16_the_people_table_keeps_its_distance_from_the_invite_card(sized, live_server, demo) -> None:
    page = sized(*DESK)
    log_in(page, live_server.url, "north-admin", demo)
    page.goto(live_server.url + "/people/")
    table = page.locator("#people").bounding_box()
    card = page.locator(".card", has=page.locator("h2", has_text="Invite someone")).bounding_box()
    assert table and card and card["y"] - (table["y"] + table["height"]) >= 16, (table, card)


def test_item16_no_empty_table_header_for_axe(sized, live_server, demo) -> None:
    _seed()
    page = sized(*DESK)
    log_in(page, live_server.url, "north-reviewer", demo)
    source = AXE.read_text()
    for path in ("/worklist/", "/dashboard/", "/history/"):
        page.goto(live_server.url + path)
        page.evaluate(source)
        result = page.evaluate("axe.run(document, {runOnly: ['empty-table-header']})")
        assert not result["violations"], (path, result["violations"])


def test_item12_a_study_pages_own_images_are_its_opening_in_the_audit_trail(sized, live_server, demo) -> None:
    study = factories.judged_study(user("north-clinician"), Label.PNEUMONIA, 0.9)
    page = sized(*DESK)
    log_in(page, live_server.url, "north-clinician", demo)
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    wait_image(page, "#viewer-current [data-image]")
    wait_image(page, "#viewer-current [data-heatmap-image]")
    page.goto(f"{live_server.url}/studies/{study.pk}/report/")
    page.wait_for_load_state("load")
    rows = AuditEvent.objects.filter(target_id=str(study.pk)).exclude(action=AuditAction.UPLOAD).order_by("id")
    assert [(e.action, e.detail) for e in rows] == [
        (AuditAction.VIEW_STUDY, {"via": "page"}),
        (AuditAction.VIEW_STUDY, {"via": "report"}),
    ]
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    page.click("text=original file")  # the original, opened in the tab: a file fetched on its own
    page.wait_for_url("**/files/image/")
    assert rows.filter(action=AuditAction.VIEW_FILE).values_list("detail__file", flat=True).get() == "image"
