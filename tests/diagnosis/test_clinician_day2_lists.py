"""Issue 27 ("the clinician's day, round two"): the lists, people, search, dashboard, audit and export items.

Each test names its item. The browser-only parts (item 10's folded filters and chart text at 390 px, item 16's
spacing) are in tests/e2e/test_clinician_day_lists.py.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from diagnosis import jobs, people
from diagnosis.audit import Origin
from diagnosis.exports import STUDY_COLUMNS
from diagnosis.models import AuditAction, AuditEvent, Label, Role, Study
from tests import factories
from tests.factories import make_member

pytestmark = pytest.mark.django_db
THRESHOLD = 0.824  # factories.prediction's


@pytest.fixture
def admin(clinic_a: Any) -> User:
    return make_member("ann", clinic_a, Role.ADMIN)


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(user: User, name: str, params: dict[str, str] | None = None) -> str:
    response = _client(user).get(reverse(name), params or {})
    assert response.status_code == 200
    return response.content.decode()


def _csv(user: User, name: str, params: dict[str, str] | None = None) -> list[dict[str, str]]:
    response = _client(user).get(reverse(name), params or {})
    body = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    lines = list(csv.reader(io.StringIO(body)))
    return [dict(zip(lines[0], line, strict=True)) for line in lines[1:]]


def _rejected(owner: User, reason: str = "This does not look like a chest X-ray.", **details: Any) -> Study:
    study = factories.study(owner, **details)
    jobs.reject_job(study.job.pk, reason)
    return study


def _failed(owner: User) -> Study:
    study = factories.study(owner)
    jobs.fail_job(study.job.pk, "Inference failed: out of memory")
    return study


def _rows(page: str, table: str) -> list[str]:
    return re.findall(r"<tr [^>]*data-href.*?</tr>", page.split(f'id="{table}"')[1], re.S)


# Items 2 and 3: borderline calls flagged, and the probability named as the probability of pneumonia.


def test_item2_the_lists_and_the_exports_flag_a_borderline_call(alice: User, clinic_a: Any) -> None:
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    factories.judged_study(alice, Label.NORMAL, THRESHOLD - 0.036, patient_ref="NEAR")  # the trial's 66 % case
    factories.judged_study(alice, Label.NORMAL, 0.05, patient_ref="FAR")
    for page, table in (
        (_page(alice, "diagnosis:history"), "history"),
        (_page(reviewer, "diagnosis:worklist"), "worklist"),
    ):
        flagged = {("NEAR" in row, "borderline" in row) for row in _rows(page, table)}
        assert flagged == {(True, True), (False, False)}, table
    for user, export in ((alice, "diagnosis:history_export"), (reviewer, "diagnosis:worklist_export")):
        assert {(r["patient_ref"], r["borderline"]) for r in _csv(user, export)} == {("NEAR", "yes"), ("FAR", "no")}


def test_item3_every_list_and_export_says_probability_of_pneumonia(alice: User, clinic_a: Any) -> None:
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    factories.judged_study(alice, Label.NORMAL, 0.66)
    for page in (_page(alice, "diagnosis:history"), _page(reviewer, "diagnosis:worklist")):
        head = page.split("<thead>")[1].split("</thead>")[0]
        assert '<abbr title="probability of pneumonia">' in head and "P(pneumonia)" in head
        assert ">Probability<" not in page
    for user, export in ((alice, "diagnosis:history_export"), (reviewer, "diagnosis:worklist_export")):
        (row,) = _csv(user, export)
        assert row["probability_of_pneumonia"] == "0.6600" and "probability" not in row
    schema = Client().get(reverse("api:schema"), {"format": "json"}).json()
    field = schema["components"]["schemas"]["Study"]["properties"]["probability"]
    assert "probability of pneumonia" in field["description"]


# Item 5: a deactivated account's set-password link, and the deactivation's confirmation.


def test_item5_a_deactivated_users_invitation_link_does_not_open_the_form(admin: User) -> None:
    invitation = people.invite(admin, username="newdoc", email="n@example.org", role="reviewer", site_url="http://x")
    path = invitation.link.removeprefix("http://x")
    invitee = Client()
    form_url = invitee.get(path)["Location"]  # a live link: Django swaps the token for the session's
    assert "Set password" in invitee.get(form_url).content.decode()
    people.set_active(admin, invitation.user.membership, False)
    for client in (invitee, Client()):  # the session that had the form, and the link opened afresh
        page = client.get(form_url if client is invitee else path, follow=True).content.decode()
        assert 'id="link-deactivated"' in page and "new_password1" not in page
    response = invitee.post(form_url, {"new_password1": "a-Long-pass-9182", "new_password2": "a-Long-pass-9182"})
    assert response.status_code == 200 and not User.objects.get(username="newdoc").has_usable_password()
    people.set_active(admin, User.objects.get(username="newdoc").membership, True)
    page = Client().get(path, follow=True).content.decode()  # reactivated: the old link stays void
    assert "expired or was already used" in page and "new_password1" not in page


def test_item5_deactivation_asks_first_and_names_the_person_and_what_stops(admin: User, alice: User) -> None:
    alice.first_name = "Alice Liddell"
    alice.save()
    _client(alice)  # a live session of hers
    page = _page(admin, "diagnosis:people")
    assert f'href="{reverse("diagnosis:person_active", args=[alice.pk])}">Deactivate' in page  # a link, not a POST
    client = _client(admin)
    confirm = client.get(reverse("diagnosis:person_active", args=[alice.pk])).content.decode()
    assert "Deactivate Alice Liddell (alice)?" in confirm
    assert "1 signed-in session end" in confirm and "they have no API token" in confirm
    assert User.objects.get(pk=alice.pk).is_active  # asking changed nothing
    done = client.post(reverse("diagnosis:person_active", args=[alice.pk]), {"active": "0"}, follow=True)
    said = done.content.decode()
    assert "Deactivated Alice Liddell (alice): 1 signed-in session end" in said and "cannot log in" in said
    assert not User.objects.get(pk=alice.pk).is_active


def test_item5_the_confirmation_is_the_clinics_own(admin: User, bob: User, alice: User, clinic_a: Any) -> None:
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    assert _client(admin).get(reverse("diagnosis:person_active", args=[bob.pk])).status_code == 404
    assert _client(reviewer).get(reverse("diagnosis:person_active", args=[alice.pk])).status_code == 403


# Item 6: search folds case and accents, on SQLite and PostgreSQL alike.


@pytest.mark.parametrize("query", ["đặng", "ĐẶNG", "dang", "Dang", "DANG"])
def test_item6_search_finds_a_reference_whatever_its_case_and_accents(alice: User, clinic_a: Any, query: str) -> None:
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    factories.judged_study(alice, patient_ref="Đặng-12")
    factories.judged_study(alice, patient_ref="OTHER")
    assert [r["patient_ref"] for r in _csv(alice, "diagnosis:history_export", {"q": query})] == ["Đặng-12"]
    assert [r["patient_ref"] for r in _csv(reviewer, "diagnosis:worklist_export", {"q": query})] == ["Đặng-12"]


def test_item6_file_names_notes_and_people_are_folded_too(alice: User, clinic_a: Any) -> None:
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    uploader = make_member("tran", clinic_a)
    uploader.first_name = "Trần Thị Ánh"
    uploader.save()
    factories.judged_study(alice, name="BATCH-Ü-7.png", patient_ref="P-1")
    factories.judged_study(alice, patient_ref="P-2", clinical_note="Sốt cao, ho")
    factories.judged_study(uploader, patient_ref="P-3")

    def found(query: str) -> list[str]:
        return sorted(r["patient_ref"] for r in _csv(reviewer, "diagnosis:worklist_export", {"q": query}))

    assert found("batch-ü") == found("batch-u") == found("Batch-Ü-7") == ["P-1"]
    assert found("sot cao") == found("SỐT") == ["P-2"]
    assert found("tran thi anh") == found("ÁNH") == ["P-3"]


def test_item6_the_migration_fills_the_folded_text_of_studies_stored_before_it(alice: User) -> None:
    import importlib

    from django.apps import apps

    study = factories.study(alice, patient_ref="ĐẶNG-1", clinical_note="Ü")
    Study.objects.filter(pk=study.pk).update(search_folded="")  # as a row stored before migration 0015
    importlib.import_module("diagnosis.migrations.0015_study_search_folded").fill(apps, None)
    assert Study.objects.get(pk=study.pk).search_folded == "dang-1\nchest.png\nu"


# Item 11: the dashboard's rejections and failures.


def test_item11_rejections_and_failures_are_figures_of_their_own(alice: User) -> None:
    factories.judged_study(alice, Label.PNEUMONIA)
    factories.judged_study(alice, Label.NORMAL)
    _rejected(alice)
    _rejected(alice)
    _failed(alice)
    page = _page(alice, "diagnosis:dashboard")
    tiles = dict(re.findall(r'<b id="stat-(\w[\w-]*)">([^<]*)</b>', page))
    assert (tiles["studies"], tiles["judged"], tiles["rejected"], tiles["failed"]) == ("5", "2", "2", "1")
    # The per-day chart counts what the tile counts: today's bar holds all five.
    assert re.search(r"<title>\d\d-\d\d: normal 1, pneumonia 1, rejected 2, failed 1</title>", page), page


# Item 12: the audit trail.


def test_item12_opening_a_study_is_one_row_but_a_download_is_recorded(alice: User, admin: User) -> None:
    study = factories.judged_study(alice)
    client = _client(alice)
    client.get(reverse("diagnosis:study", args=[study.pk]))
    for kind in ("preview", "heatmap", "overlay"):  # the images the page shows, loaded by it
        client.get(reverse("diagnosis:study_file", args=[study.pk, kind]), HTTP_SEC_FETCH_DEST="image")
    rows = AuditEvent.objects.filter(target_id=str(study.pk)).exclude(action=AuditAction.UPLOAD)
    assert [(e.action, e.detail) for e in rows] == [(AuditAction.VIEW_STUDY, {"via": "page"})]
    client.get(reverse("diagnosis:study_file", args=[study.pk, "image"]), HTTP_SEC_FETCH_DEST="image")  # the original
    client.get(reverse("diagnosis:study_file", args=[study.pk, "heatmap"]), HTTP_SEC_FETCH_DEST="document")  # new tab
    client.get(reverse("diagnosis:study_file", args=[study.pk, "overlay"]))  # a script: no fetch metadata
    files = rows.filter(action=AuditAction.VIEW_FILE).order_by("id").values_list("detail__file", flat=True)
    assert list(files) == ["image", "heatmap", "overlay"]
    other = factories.judged_study(alice)  # never opened: its images loaded alone are recorded
    client.get(reverse("diagnosis:study_file", args=[other.pk, "preview"]), HTTP_SEC_FETCH_DEST="image")
    assert AuditEvent.objects.filter(action=AuditAction.VIEW_FILE, target_id=str(other.pk)).count() == 1


def test_item12_what_names_the_file_and_the_patient(alice: User, admin: User) -> None:
    study = factories.judged_study(alice, name="left-side.png", patient_ref="NORTH-7")
    _client(alice).get(reverse("diagnosis:study", args=[study.pk]))
    page = _page(admin, "diagnosis:audit", {"action": AuditAction.VIEW_STUDY})
    what = re.findall(r'<td data-th="What">(.*?)</td>', page, re.S)
    assert len(what) == 1 and ">left-side.png</a>" in what[0] and "patient NORTH-7" in what[0]
    assert str(study.pk) in what[0]  # the link and its title keep the id


@pytest.mark.parametrize("query", ["ali", "ALICE", "Liddell", "alice liddell", "lïddell"])
def test_item12_the_user_filter_takes_part_of_a_username_or_full_name(alice: User, admin: User, query: str) -> None:
    alice.first_name, alice.last_name = "Alice", "Liddell"
    alice.save()
    study = factories.judged_study(alice)
    _client(alice).get(reverse("diagnosis:study", args=[study.pk]))
    _client(admin).get(reverse("diagnosis:study", args=[study.pk]))
    page = _page(admin, "diagnosis:audit", {"username": query, "action": AuditAction.VIEW_STUDY})
    assert page.count('class="audit-row view_study"') == 1 and ">Alice Liddell<" in page


# Item 13: sorting.


def test_item13_sort_arrows_a_named_default_and_rejected_studies_last(alice: User, clinic_a: Any) -> None:
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    factories.judged_study(alice, Label.NORMAL, 0.2, patient_ref="LOW")
    factories.judged_study(alice, Label.PNEUMONIA, 0.95, patient_ref="HIGH")
    _rejected(alice, patient_ref="REJ")
    worklist = _page(reviewer, "diagnosis:worklist")
    assert "---------" not in worklist and ">To verify, then likeliest pneumonia</option>" in worklist
    assert worklist.count('class="sort-arrow" aria-hidden="true">↕<') == 3
    ascending = _page(alice, "diagnosis:history", {"sort": "probability"})
    assert 'aria-sort="ascending"' in ascending and 'aria-hidden="true">▲<' in ascending
    for sort in ("probability", "-probability"):
        order = [r["patient_ref"] for r in _csv(alice, "diagnosis:history_export", {"sort": sort})]
        assert order == (["LOW", "HIGH", "REJ"] if sort == "probability" else ["HIGH", "LOW", "REJ"])


# Item 14: the exports' clinical note, rejection reason and review state (formula escaping of the note is in
# tests/diagnosis/test_csv_formulas.py).


def test_item14_history_export_has_the_note_and_the_reason_and_no_review_for_a_rejected_study(alice: User) -> None:
    factories.judged_study(alice, patient_ref="OK", clinical_note="cough, 3 days")
    _rejected(alice, "This looks like a colour photograph, not a chest X-ray.", patient_ref="REJ")
    rows = {r["patient_ref"]: r for r in _csv(alice, "diagnosis:history_export")}
    assert (rows["OK"]["clinical_note"], rows["OK"]["review"], rows["OK"]["reason"]) == (
        "cough, 3 days",
        "not reviewed",
        "",
    )
    assert rows["REJ"]["status"] == "rejected" and rows["REJ"]["review"] == ""
    assert rows["REJ"]["reason"] == "This looks like a colour photograph, not a chest X-ray."
    assert {"clinical_note", "reason"} <= set(STUDY_COLUMNS)


# Item 16: dates, empty headers, the invitation's full name.


def test_item16_date_filters_are_written_yyyy_mm_dd(alice: User, clinic_a: Any, admin: User) -> None:
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    for page, names in (
        (_page(reviewer, "diagnosis:worklist", {"created_from": "2026-01-02"}), ("created_from", "created_to")),
        (_page(admin, "diagnosis:audit"), ("at_from", "at_to")),
    ):
        for name in names:
            field = re.search(rf'<input [^>]*name="{name}"[^>]*>', page)
            assert field and 'type="text"' in field[0] and 'placeholder="YYYY-MM-DD"' in field[0], field
    assert 'value="2026-01-02"' in _page(reviewer, "diagnosis:worklist", {"created_from": "2026-01-02"})


def test_item16_no_table_header_is_empty(alice: User, clinic_a: Any) -> None:
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    factories.judged_study(alice)
    for name in ("diagnosis:worklist", "diagnosis:dashboard", "diagnosis:history"):
        page = _page(reviewer, name)
        assert not re.search(r"<th[^>]*>\s*</th>", page), name


def test_item16_an_invitation_takes_a_full_name(admin: User) -> None:
    client = _client(admin)
    client.post(
        reverse("diagnosis:people"),
        {"username": "nguyen", "full_name": "Nguyễn Văn An", "email": "n@example.org", "role": "clinician"},
    )
    assert User.objects.get(username="nguyen").get_full_name() == "Nguyễn Văn An"
    page = _page(admin, "diagnosis:people")
    assert 'name="full_name"' in page and '<td data-th="Full name">Nguyễn Văn An</td>' in page


def test_item16_reset_access_is_refused_for_a_deactivated_member(admin: User, alice: User) -> None:
    people.set_active(admin, alice.membership, False, Origin())
    with pytest.raises(people.PeopleError, match="reactivate them first"):
        people.reset_access(admin, alice.membership, "http://x")
