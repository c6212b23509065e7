"""The acceptance set: labelled by a clinic admin (a request's reference_label, or a zip's labels.csv), judged like
any other study, and kept out of the clinical worklist, history and dashboard."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from diagnosis import selectors
from diagnosis.models import Role, Study
from tests import factories, images
from tests.factories import make_member, token_client, upload_file

pytestmark = pytest.mark.django_db


def _zip(entries: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    buf.seek(0)
    buf.name = "set.zip"
    return buf


@pytest.fixture
def admin(clinic_a: Any) -> Any:
    return make_member("ada", clinic_a, Role.ADMIN)


def test_an_admins_reference_label_makes_acceptance_studies(admin: Any) -> None:
    files = [upload_file("a.png"), upload_file("b.png")]
    answer = token_client(admin).post("/api/v1/studies/", {"images": files, "reference_label": "NORMAL"})
    assert answer.status_code == 202, answer.content
    studies = Study.objects.all()
    assert len(studies) == 2 and all(s.acceptance and s.reference_label == "NORMAL" for s in studies)


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.REVIEWER])
def test_anyone_else_is_refused_and_nothing_is_stored(clinic_a: Any, role: str) -> None:
    user = make_member("someone", clinic_a, role)
    answer = token_client(user).post("/api/v1/studies/", {"images": [upload_file()], "reference_label": "PNEUMONIA"})
    assert answer.status_code == 403 and "clinic admin" in answer.json()["detail"]
    labelled = _zip({"a.png": images.png(), "labels.csv": b"a.png,NORMAL\n"})
    assert token_client(user).post("/api/v1/studies/", {"archive": labelled}).status_code == 403
    assert not Study.objects.exists()


def test_labels_csv_labels_each_entry_and_refuses_one_it_does_not_name(admin: Any) -> None:
    archive = _zip(
        {
            "x/a.png": images.png(),
            "b.png": images.png(),
            "c.png": images.png(),
            "labels.csv": b"file,label\na.png,pneumonia\nb.png, NORMAL \n",
        }
    )
    answer = token_client(admin).post("/api/v1/studies/", {"archive": archive})
    assert answer.status_code == 202
    assert {(s.original_name, s.reference_label) for s in Study.objects.all()} == {
        ("a.png", "PNEUMONIA"),
        ("b.png", "NORMAL"),
    }
    assert answer.json()["errors"] == [{"file_name": "c.png", "error": "labels.csv gives no label for this file."}]


def test_a_labels_csv_with_a_wrong_label_is_refused_with_its_row(admin: Any) -> None:
    archive = _zip({"a.png": images.png(), "labels.csv": b"a.png,NORMAL\nb.png,maybe\n"})
    answer = token_client(admin).post("/api/v1/studies/", {"archive": archive})
    assert answer.status_code == 202 and not Study.objects.exists()
    assert "row 2: 'maybe' is not NORMAL or PNEUMONIA" in answer.json()["errors"][0]["error"]


def test_acceptance_studies_stay_out_of_the_clinical_lists(admin: Any) -> None:
    clinical = factories.judged_study(admin)
    factories.site_studies(admin, [1.0, 5.0], [0, 1])
    assert list(selectors.worklist(admin)) == [clinical]
    board = selectors.dashboard(admin)
    assert board.studies == 1 and board.judged == 1
    listed = token_client(admin).get("/api/v1/studies/").json()
    assert [s["id"] for s in listed["results"]] == [str(clinical.pk)]
    acceptance = token_client(admin).get("/api/v1/studies/?acceptance=yes").json()
    assert len(acceptance["results"]) == 2 and all(s["acceptance"] for s in acceptance["results"])


def test_the_upload_page_offers_the_label_to_admins_only(admin: Any, alice: Any, client: Any) -> None:
    client.force_login(admin)
    assert b'id="acceptance"' in client.get("/upload/").content
    client.force_login(alice)
    assert b'id="acceptance"' not in client.get("/upload/").content
    answer = client.post("/upload/", {"images": upload_file(), "reference_label": "NORMAL"})
    assert answer.status_code == 403 and not Study.objects.exists()


def _answer(admin: Any, entries: dict[str, bytes]) -> Any:
    answer = token_client(admin).post("/api/v1/studies/", {"archive": _zip(entries)})
    assert answer.status_code == 202, answer.content
    return answer.json()


def test_a_labels_csv_that_is_not_csv_is_refused_not_a_server_error(admin: Any) -> None:
    """From a review: a field over the csv module's limit raised csv.Error, a 500."""
    labels = b"a.png,NORMAL\n" + b"x" * 200_000 + b",NORMAL\n"
    answer = _answer(admin, {"a.png": images.png(), "labels.csv": labels})
    assert answer["errors"][0]["file_name"] == "labels.csv" and "not CSV text" in answer["errors"][0]["error"]
    assert not Study.objects.exists()


def test_a_name_labelled_both_ways_is_refused(admin: Any) -> None:
    """From a review: the later row silently won."""
    answer = _answer(admin, {"a.png": images.png(), "labels.csv": b"a.png,NORMAL\nb.png,NORMAL\na.png,PNEUMONIA\n"})
    assert "row 3: 'a.png' is labelled both NORMAL and PNEUMONIA" in answer["errors"][0]["error"]
    assert not Study.objects.exists()


def test_a_file_name_shared_by_two_folders_labels_neither(admin: Any) -> None:
    """From a review: labels.csv's a.png labelled both x/a.png and y/a.png; a path still labels its own entry."""
    entries = {"x/a.png": images.png(), "y/a.png": images.png(), "z/b.png": images.png()}
    answer = _answer(admin, {**entries, "labels.csv": b"a.png,NORMAL\ny/a.png,PNEUMONIA\nb.png,NORMAL\n"})
    assert {(s.original_name, s.reference_label) for s in Study.objects.all()} == {
        ("a.png", "PNEUMONIA"),
        ("b.png", "NORMAL"),
    }
    assert [e["file_name"] for e in answer["errors"]] == ["x/a.png"]


def test_an_archive_declaring_too_many_entries_is_refused_before_labels_csv_is_read(
    admin: Any, settings: Any, monkeypatch: Any
) -> None:
    """From a review: labels.csv was looked for with ZipFile, which parses the whole directory, before the
    archive's declared entries were checked."""
    from diagnosis.site import acceptance

    settings.MAX_ARCHIVE_FILES = 2
    archive = _zip({**{f"{i}.png": b"x" for i in range(9)}, "labels.csv": b"0.png,NORMAL\n"})
    parsed: list[int] = []
    monkeypatch.setattr(acceptance.zipfile, "ZipFile", lambda *a, **k: parsed.append(1))
    answer = token_client(admin).post("/api/v1/studies/", {"archive": archive})
    assert answer.status_code == 202, answer.content
    assert "holds 10 entries; the limit is 2 files" in answer.json()["errors"][0]["error"] and parsed == []


def test_a_corrupt_labels_csv_refuses_the_archive_instead_of_storing_clinical_studies(admin: Any) -> None:
    archive = _zip({"a.png": images.png(), "labels.csv": b"a.png,NORMAL\n" * 50})
    raw = bytearray(archive.getvalue())
    at = raw.find(b"a.png,NORMAL") if b"a.png,NORMAL" in raw else -1
    if at < 0:  # deflated: spoil the stored CRC of labels.csv in the central directory instead
        at = raw.rfind(b"labels.csv") - 30
    raw[at] ^= 0xFF
    spoilt = io.BytesIO(bytes(raw))
    spoilt.name = "set.zip"
    answer = token_client(admin).post("/api/v1/studies/", {"archive": spoilt})
    assert answer.status_code in (202, 400)
    assert not Study.objects.filter(acceptance=False).exists()
