"""CSV exports of History and the Worklist: clinic-scoped, filtered like the page, audited, formula-safe."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from diagnosis import reviews
from diagnosis.exports import STUDY_COLUMNS
from diagnosis.models import AuditAction, AuditEvent, JobStatus, Label, Review, Role, Study
from tests import factories
from tests.factories import make_member

pytestmark = pytest.mark.django_db


def _rows(client: Client, name: str, params: dict[str, str] | None = None) -> list[dict[str, str]]:
    response = client.get(reverse(name), params or {})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8" and "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert body.startswith(b"\xef\xbb\xbf")  # the byte-order mark Excel needs to read UTF-8
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert lines[0] == STUDY_COLUMNS
    return [dict(zip(STUDY_COLUMNS, line, strict=True)) for line in lines[1:]]


def test_history_export_holds_only_the_users_own_studies_with_the_pages_filters(alice, bob, clinic_a, client) -> None:
    colleague = make_member("carl", clinic_a)
    mine = factories.judged_study(alice, Label.PNEUMONIA, 0.87, patient_ref="P-1", age_years=3)
    factories.judged_study(alice, Label.NORMAL, 0.1, patient_ref="P-2")
    factories.judged_study(colleague, Label.PNEUMONIA)  # same clinic, not alice's
    factories.judged_study(bob, Label.PNEUMONIA)  # another clinic
    client.force_login(alice)
    assert {r["patient_ref"] for r in _rows(client, "diagnosis:history_export")} == {"P-1", "P-2"}
    (row,) = _rows(client, "diagnosis:history_export", {"label": Label.PNEUMONIA})
    assert (row["study_id"], row["uploader"], row["model_label"], row["probability_of_pneumonia"]) == (
        str(mine.pk),
        "alice",
        Label.PNEUMONIA,
        "0.8700",
    )
    assert (row["age_years"], row["review"], row["final_label"]) == ("3", "not reviewed", "")
    exports = AuditEvent.objects.filter(action=AuditAction.EXPORT, username="alice").order_by("id")
    assert [e.detail for e in exports] == [
        {"what": "history_csv", "filters": {}},
        {"what": "history_csv", "filters": {"label": Label.PNEUMONIA}},
    ]


def test_worklist_export_is_the_clinics_worklist_in_its_filter_and_order_every_page(alice, bob, clinic_a) -> None:
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    for i in range(30):  # more than one page of the worklist (25)
        factories.judged_study(alice, Label.PNEUMONIA, 0.5 + i / 100, patient_ref=f"A-{i:02}")
    reviewed = factories.judged_study(alice, Label.PNEUMONIA, 0.99, patient_ref="R-1")
    reviews.review_study(reviewer, reviewed, agrees=False, note="=cmd|' /C calc'!A0")
    factories.study(alice, patient_ref="QUEUED")  # no result: not on the worklist
    factories.judged_study(bob, Label.PNEUMONIA, patient_ref="B-1")
    client = Client()
    client.force_login(reviewer)
    rows = _rows(client, "diagnosis:worklist_export")  # unreviewed by default, likeliest first
    assert [r["patient_ref"] for r in rows] == [f"A-{i:02}" for i in reversed(range(30))]
    rows = _rows(client, "diagnosis:worklist_export", {"reviewed": "yes"})
    assert [(r["patient_ref"], r["review"], r["final_label"], r["reviewer"]) for r in rows] == [
        ("R-1", "disagrees", Label.NORMAL, "rita")
    ]
    assert rows[0]["review_note"].startswith("'=")  # not run as a formula by a spreadsheet
    rows = _rows(client, "diagnosis:worklist_export", {"reviewed": "", "patient_ref": "a-07"})
    assert [r["patient_ref"] for r in rows] == ["A-07"]
    exports = AuditEvent.objects.filter(action=AuditAction.EXPORT, username="rita")
    assert exports.count() == 3 and {e.detail["what"] for e in exports} == {"worklist_csv"}
    assert {e.clinic_id for e in exports} == {clinic_a.pk}


def test_the_list_pages_link_their_export_with_their_filters(alice, client) -> None:
    client.force_login(alice)
    page = client.get(reverse("diagnosis:history"), {"label": Label.NORMAL}).content.decode()
    assert f'href="{reverse("diagnosis:history_export")}?label=NORMAL"' in page
    page = client.get(reverse("diagnosis:worklist"), {"reviewed": "yes"}).content.decode()
    assert f'href="{reverse("diagnosis:worklist_export")}?reviewed=yes"' in page


def test_a_row_gives_when_it_was_uploaded_and_reviewed_and_blanks_what_a_study_without_a_result_lacks(
    alice, clinic_a, client
) -> None:
    """The timestamps are the study's and the review's own (not the time of the export); a study still queued has
    empty result and review cells, not placeholders."""
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    judged = factories.judged_study(alice, Label.PNEUMONIA, 0.9, patient_ref="J-1")
    review = reviews.review_study(reviewer, judged, agrees=True, note="fine")
    factories.study(alice, patient_ref="Q-1")
    long_ago = timezone.now() - timedelta(days=40, hours=5)
    Study.objects.filter(patient_ref__in=["J-1", "Q-1"]).update(created=long_ago)
    Review.objects.filter(pk=review.pk).update(updated=long_ago + timedelta(hours=1))
    client.force_login(alice)
    rows = {r["patient_ref"]: r for r in _rows(client, "diagnosis:history_export")}
    assert datetime.fromisoformat(rows["J-1"]["uploaded"]) == long_ago
    assert datetime.fromisoformat(rows["Q-1"]["uploaded"]) == long_ago
    assert datetime.fromisoformat(rows["J-1"]["reviewed"]) == long_ago + timedelta(hours=1)
    assert (rows["J-1"]["review"], rows["J-1"]["reviewer"], rows["J-1"]["review_note"]) == ("agrees", "rita", "fine")
    blank = ["model_label", "probability_of_pneumonia", "threshold", "borderline", "model_version"]
    blank += ["review", "final_label", "reviewer", "reviewed", "review_note"]
    assert {name: rows["Q-1"][name] for name in blank} == dict.fromkeys(blank, "")
    assert rows["Q-1"]["status"] == JobStatus.QUEUED


def test_an_export_is_recorded_with_where_it_came_from_and_named_for_when_it_ran(alice, client) -> None:
    """The audit row of an export says from which address and browser it was asked (as a login's does), and the
    file is named after what it holds and the time it was made (UTC, to the second), so two never collide."""
    client.force_login(alice)
    before = timezone.now().replace(microsecond=0)
    response = client.get(reverse("diagnosis:history_export"), REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="Agent/9")
    after = timezone.now()
    assert response.status_code == 200
    (event,) = AuditEvent.objects.filter(action=AuditAction.EXPORT, username="alice")
    assert (event.ip, event.user_agent) == ("203.0.113.7", "Agent/9")
    named = re.fullmatch(r'attachment; filename="history-(\d{8}-\d{6})\.csv"', response["Content-Disposition"])
    assert named is not None, response["Content-Disposition"]
    made = datetime.strptime(named[1], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    assert before <= made <= after
