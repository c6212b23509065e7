"""Issue 28, item 6: CSV formula escaping was bypassed with `;`. A failed login with
User-Agent `x;=cmd|' /C calc'!A0`, or a patient reference or note `x;=1+1`, went out unquoted; a spreadsheet that
splits cells at `;` ran the part after it. Every export quotes every cell and marks every formula start as text:
at a cell's start, after leading spaces, and after any separator an importer may split at (`,` `;` tab, line break).
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.test import Client
from django.urls import reverse

from diagnosis import audit, reviews
from diagnosis.audit import Origin
from diagnosis.models import AuditAction, Label, Role
from tests import factories
from tests.factories import make_member

pytestmark = pytest.mark.django_db

STARTS = ["=", "+", "-", "@", "\t", "\r"]
# Plain test ids: repr's '\\t' and '\\r' were ids a node id given back to pytest (as mutmut does) did not find.
START_IDS = ["equals", "plus", "minus", "at", "tab", "carriage-return"]
# Where a formula may begin: the cell's start, after leading spaces, after each separator an importer may split at.
PREFIXES = ["", "  ", "x;", "x,", "x\t", "x; "]
FROM_THE_ISSUE = ["x;=cmd|' /C calc'!A0", "x;=1+1"]


def values(start: str) -> list[str]:
    return [f"{prefix}{start}1+1" for prefix in PREFIXES] + FROM_THE_ISSUE


def escaped(start: str) -> set[str]:
    """values(start) as a spreadsheet must get them: an apostrophe before the formula start."""
    return {f"{prefix}'{start}1+1" for prefix in PREFIXES} | {"x;'=cmd|' /C calc'!A0", "x;'=1+1"}


def _body(client: Client, name: str, params: dict[str, str] | None = None) -> str:
    response = client.get(reverse(name), params or {})
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]


def assert_formula_safe(body: str) -> list[list[str]]:
    """Every cell quoted, and no piece of the file, split at any separator (quotes ignored, as an importer told
    a separator may do), starts with a formula once leading spaces and quotes are skipped."""
    rows = list(csv.reader(io.StringIO(body)))
    requoted = io.StringIO()
    csv.writer(requoted, quoting=csv.QUOTE_ALL).writerows(rows)
    assert requoted.getvalue() == body, "a cell went out unquoted"
    for piece in re.split(r"[,;\t\r\n]", body):
        assert not piece.lstrip(' "').startswith(("=", "+", "-", "@")), f"a formula in {piece!r}"
    return rows


@pytest.mark.parametrize("start", STARTS, ids=START_IDS)
def test_the_audit_export(clinic_a, start: str) -> None:
    admin = make_member("@ann", clinic_a, Role.ADMIN)  # a name may start with @ + - (Django allows them)
    make_member("alice", clinic_a)
    for value in values(start):
        audit.record(None, AuditAction.LOGIN_FAILED, origin=Origin(user_agent=value), username="alice", clinic=clinic_a)
    Client(HTTP_USER_AGENT=FROM_THE_ISSUE[0]).post(reverse("login"), {"username": "alice", "password": "wrong"})
    client = Client()
    client.force_login(admin)
    rows = assert_formula_safe(_body(client, "diagnosis:audit_export"))
    agents = [r[7] for r in rows[1:]]
    assert agents.count("x;'=cmd|' /C calc'!A0") == 2  # the failed login's own row too
    assert "x;'=1+1" in agents and set(agents) >= escaped(start)
    assert "'@ann" in [r[1] for r in rows[1:]]  # the export's own row names who ran it


@pytest.mark.parametrize("start", STARTS, ids=START_IDS)
@pytest.mark.parametrize("export", ["diagnosis:worklist_export", "diagnosis:history_export"])
def test_the_study_exports(alice, clinic_a, start: str, export: str) -> None:
    reviewer = make_member("-rita", clinic_a, Role.REVIEWER)
    for value in values(start):
        study = factories.judge(factories.study(alice, value, patient_ref=value, clinical_note=value), Label.PNEUMONIA)
        reviews.review_study(reviewer, study, agrees=True, note=value)
    client = Client()
    client.force_login(reviewer if "worklist" in export else alice)
    rows = assert_formula_safe(_body(client, export, {"reviewed": "yes"} if "worklist" in export else None))
    column = {name: i for i, name in enumerate(rows[0])}
    refs, notes = [r[column["patient_ref"]] for r in rows[1:]], [r[column["review_note"]] for r in rows[1:]]
    clinical = [r[column["clinical_note"]] for r in rows[1:]]  # issue 27, item 14: the clinical note, escaped too
    assert len(refs) == len(values(start)) and "x;'=1+1" in refs and "x;'=1+1" in notes and "x;'=1+1" in clinical
    for name in ("patient_ref", "clinical_note"):  # kept as typed, so each one's escape is known exactly
        assert {r[column[name]] for r in rows[1:]} == escaped(start), name
    names = [r[column["file_name"]] for r in rows[1:]]  # the uploaded file's name, as the browser sent it
    assert "x;'=1+1" in names and {r[column["reviewer"]] for r in rows[1:]} == {"'-rita"}
