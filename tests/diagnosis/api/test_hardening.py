"""Issue 11, items 2, 3, 4, 7, 8 and 9: what a red-team pass broke in the API and the upload page."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from diagnosis.api import idempotency
from diagnosis.models import IdempotentResponse, Study
from tests import badinput, factories, images
from tests.factories import upload_file

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles() -> None:
    """Many submissions in a few seconds: each test starts below the per-user submission rate."""
    cache.clear()


API = "/api/v1"


def _archive(data: bytes) -> io.BytesIO:
    buf = io.BytesIO(data)
    buf.name = "studies.zip"
    return buf


@pytest.mark.parametrize("broken", sorted(badinput.BROKEN_ZIPS))
def test_a_broken_zip_entry_is_a_per_entry_error_and_the_answer_lists_every_stored_study(
    alice_api: APIClient, broken: str
) -> None:
    """Item 2: BadZipFile / NotImplementedError / zlib.error from one entry was a 500 after storing the others."""
    data = badinput.BROKEN_ZIPS[broken](images.png())
    r = alice_api.post(f"{API}/studies/", {"archive": _archive(data)}, format="multipart")
    assert r.status_code == 202, r.content[:300]
    body = r.json()
    assert [s["file_name"] for s in body["studies"]] == ["good.png"]
    assert len(body["errors"]) == 1 and "corrupt" in body["errors"][0]["error"]
    assert Study.objects.count() == 1


def test_a_retry_with_the_key_after_a_broken_entry_stores_nothing_again(alice_api: APIClient) -> None:
    data = badinput.zip_bad_crc(images.png())
    headers = {"Idempotency-Key": "broken-zip"}
    answers = [
        alice_api.post(f"{API}/studies/", {"archive": _archive(data)}, format="multipart", headers=headers)
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json() == answers[1].json()
    assert Study.objects.count() == 1


def test_an_idempotency_key_reused_for_a_different_request_is_422(alice_api: APIClient) -> None:
    """Item 3: the replay silently dropped the second request's files."""
    headers = {"Idempotency-Key": "k1"}
    first = alice_api.post(f"{API}/studies/", {"images": [upload_file()]}, format="multipart", headers=headers)
    assert first.status_code == 202
    other_file = alice_api.post(
        f"{API}/studies/", {"images": [upload_file("b.png", images.jpeg())]}, format="multipart", headers=headers
    )
    other_field = alice_api.post(
        f"{API}/studies/", {"images": [upload_file()], "patient_ref": "P-2"}, format="multipart", headers=headers
    )
    assert (other_file.status_code, other_field.status_code) == (422, 422)
    assert "different request" in other_file.json()["detail"]
    same = alice_api.post(f"{API}/studies/", {"images": [upload_file()]}, format="multipart", headers=headers)
    assert same.status_code == 202 and same.json() == first.json()
    assert Study.objects.count() == 1


def _cut_off(key: str, kept: int, seconds_ago: float) -> list[str]:
    """Leave the key's request as a process killed part way leaves it: no answer, its key still held, only the
    first `kept` studies of its batch stored, and its lease last renewed `seconds_ago`. Returns the kept ids."""
    record = IdempotentResponse.objects.get(key=key)
    assert record.batch is not None  # the key names its batch before anything is stored
    studies = list(Study.objects.filter(batch=record.batch).order_by("created", "pk"))
    for study in studies[kept:]:
        study.delete()
    then = timezone.now() - timedelta(seconds=seconds_ago)
    Study.objects.filter(batch=record.batch).update(created=then)
    IdempotentResponse.objects.filter(pk=record.pk).update(status_code=0, body={}, lease=then)
    return [str(s.pk) for s in studies[:kept]]


def test_a_key_whose_request_was_cut_off_is_taken_over_and_its_batch_completed(alice_api: APIClient) -> None:
    """A red-team pass killed the web server's process part way through a 64-file request: half the batch was stored,
    and every retry with the key got 409 forever (a new key would have stored that half again)."""
    headers = {"Idempotency-Key": "cut-off"}

    def post() -> Any:
        files = [upload_file(f"{i}.png", images.encode(images.chest_like(seed=i))) for i in range(3)]
        return alice_api.post(f"{API}/studies/", {"images": files}, format="multipart", headers=headers)

    first = post()
    assert first.status_code == 202 and len(first.json()["studies"]) == 3
    kept = _cut_off("cut-off", kept=2, seconds_ago=idempotency.LEASE_SECONDS - 30)
    assert post().status_code == 409  # it may still be running: it renewed its lease 90 s ago
    kept = _cut_off("cut-off", kept=2, seconds_ago=idempotency.LEASE_SECONDS + 5)
    retry = post()
    assert retry.status_code == 202, retry.content[:300]
    body = retry.json()
    assert body["batch"] == first.json()["batch"]
    assert [s["file_name"] for s in body["studies"]] == ["0.png", "1.png", "2.png"]
    assert {s["id"] for s in body["studies"][:2]} == set(kept)  # answered again, not stored again
    assert Study.objects.count() == 3
    again = post()
    assert again.status_code == 202 and again.json() == body  # the key now replays the completed answer


def test_a_request_that_stalled_and_lost_its_key_stores_nothing_more(alice_api: APIClient, monkeypatch) -> None:
    """From a review: a live request (stalled past the lease) and the retry that took its key over both stored the
    same files, and each overwrote or deleted the other's answer. Now the stalled one stops at its next file."""
    from diagnosis import intake

    headers = {"Idempotency-Key": "stalled"}
    files = [upload_file(f"{i}.png", images.encode(images.chest_like(seed=i))) for i in range(4)]
    validate, calls = intake.validate_upload, []

    def stall_after_two(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # the request stalls past its lease while it reads its second file: a retry takes over
            record = IdempotentResponse.objects.get(key="stalled")
            assert idempotency._take_over(_aged(record))
        return validate(*args)

    monkeypatch.setattr(intake, "validate_upload", stall_after_two)
    monkeypatch.setattr(idempotency, "RENEW_SECONDS", 0)  # it renews before every file
    r = alice_api.post(f"{API}/studies/", {"images": files}, format="multipart", headers=headers)
    assert r.status_code == 409 and "a retry with its Idempotency-Key took over" in r.json()["detail"]
    assert len(calls) == 2 and Study.objects.count() == 0  # its two files were never recorded: no third was read
    record = IdempotentResponse.objects.get(key="stalled")
    assert record.status_code == 0  # the answer is the retry's to give, not the stalled request's


def _aged(record: IdempotentResponse) -> IdempotentResponse:
    """The record as a retry reads it once the lease has run out."""
    then = timezone.now() - timedelta(seconds=idempotency.LEASE_SECONDS + 1)
    IdempotentResponse.objects.filter(pk=record.pk).update(lease=then)
    record.refresh_from_db()
    return record


def test_a_cut_off_key_is_taken_over_by_one_retry_only(alice_api: APIClient) -> None:
    headers = {"Idempotency-Key": "cut-off-twice"}
    first = alice_api.post(f"{API}/studies/", {"images": [upload_file()]}, format="multipart", headers=headers)
    assert first.status_code == 202
    _cut_off("cut-off-twice", kept=0, seconds_ago=idempotency.LEASE_SECONDS + 5)
    record = IdempotentResponse.objects.get(key="cut-off-twice")
    stale = IdempotentResponse.objects.get(pk=record.pk)
    assert idempotency._take_over(record)  # the first retry holds the key now
    assert not idempotency._take_over(stale)  # a second one, which read the row before, does not


def test_an_over_long_idempotency_key_is_400_not_cut_to_a_colliding_prefix(alice_api: APIClient) -> None:
    prefix = "k" * 200
    r = alice_api.post(
        f"{API}/studies/", {"images": [upload_file()]}, format="multipart", headers={"Idempotency-Key": prefix + "A"}
    )
    assert r.status_code == 400 and "longer than 200" in r.json()["detail"]
    assert not IdempotentResponse.objects.exists() and not Study.objects.exists()


def test_a_refused_request_leaves_no_key_behind(alice_api: APIClient) -> None:
    headers = {"Idempotency-Key": "bad-then-good"}
    r = alice_api.post(
        f"{API}/studies/", {"age_years": "x", "images": [upload_file()]}, format="multipart", headers=headers
    )
    assert r.status_code == 400
    assert not IdempotentResponse.objects.exists() and not Study.objects.exists()


def test_deeply_nested_json_is_400(alice: object, clinic_a: object) -> None:
    """Item 4: 5,000 '[' then 5,000 ']' raised RecursionError (500)."""
    reviewer = factories.make_member("rev", clinic_a, "reviewer")  # type: ignore[arg-type]
    study = factories.judged_study(alice)  # type: ignore[arg-type]
    r = factories.token_client(reviewer).post(
        f"{API}/studies/{study.pk}/review/", "[" * 5000 + "]" * 5000, content_type="application/json"
    )
    assert r.status_code == 400 and "nested too deeply" in r.json()["detail"]


def test_a_request_over_the_limit_is_refused_by_content_length_before_it_is_read(
    alice_api: APIClient, settings
) -> None:
    """Item 7: the body was spooled to disk before it was refused. Here it cannot even be read."""
    settings.MAX_REQUEST_BYTES = 1024 * 1024

    r = alice_api.generic(
        "POST", f"{API}/studies/", "", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH="5000000"
    )
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    page = Client()
    page.force_login(User.objects.get(username="alice"))
    response = page.generic(
        "POST", "/upload/", "", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH="5000000"
    )
    assert response.status_code == 413


def test_an_oversized_file_is_not_written_whole_to_disk(alice_api: APIClient, settings, tmp_path: Path) -> None:
    settings.MAX_UPLOAD_BYTES = 64 * 1024
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    seen: list[int] = []
    from diagnosis import limits

    original = limits.CappedTemporaryFileUploadHandler.file_complete

    def spy(self, file_size):
        self.file.flush()
        seen.append(Path(self.file.temporary_file_path()).stat().st_size)
        return original(self, file_size)

    limits.CappedTemporaryFileUploadHandler.file_complete = spy  # type: ignore[method-assign]
    try:
        big = SimpleUploadedFile("big.png", images.png() + b"\0" * (5 * 1024 * 1024))
        r = alice_api.post(f"{API}/studies/", {"images": [big, upload_file()]}, format="multipart")
    finally:
        limits.CappedTemporaryFileUploadHandler.file_complete = original  # type: ignore[method-assign]
    assert r.status_code == 202
    assert seen[0] <= settings.MAX_UPLOAD_BYTES + 1
    assert r.json()["errors"][0]["file_name"] == "big.png" and "limit" in r.json()["errors"][0]["error"]
    assert len(r.json()["studies"]) == 1


@pytest.mark.parametrize(
    ("what", "data", "status"),
    [
        ("1,001 files", {"images": [upload_file(f"{i}.png", b"x") for i in range(1001)]}, 400),
        ("1,001 fields", {f"f{i}": "v" for i in range(1001)}, 400),
        ("an 11 MB text field", {"clinical_note": "n" * (11 * 1024 * 1024)}, 413),
    ],
)
def test_the_api_answers_json_with_the_reason_never_django_s_html_page(
    alice_api: APIClient, what: str, data: dict[str, object], status: int
) -> None:
    """Item 8."""
    r = alice_api.post(f"{API}/studies/", data, format="multipart")
    assert r.status_code == status
    assert r["Content-Type"].startswith("application/json")
    assert r.json()["detail"]


def test_one_empty_file_does_not_fail_the_good_ones_on_the_api(alice_api: APIClient) -> None:
    """Item 9: [good, empty, good] was a 400 and nothing was stored."""
    files = [upload_file("a.png"), upload_file("empty.png", b""), upload_file("c.png")]
    r = alice_api.post(f"{API}/studies/", {"images": files}, format="multipart")
    assert r.status_code == 202
    assert [s["file_name"] for s in r.json()["studies"]] == ["a.png", "c.png"]
    assert r.json()["errors"] == [{"file_name": "empty.png", "error": "The file is empty."}]


def test_one_empty_file_does_not_fail_the_good_ones_on_the_page(alice) -> None:
    client = Client()
    client.force_login(alice)
    files = [upload_file("a.png"), upload_file("empty.png", b""), upload_file("c.png")]
    r = client.post("/upload/", {"images": files})
    assert Study.objects.count() == 2
    page = r.content.decode()
    assert "empty.png" in page and "The file is empty." in page


def test_an_empty_age_means_not_given_on_the_api_as_on_the_page(alice_api: APIClient) -> None:
    r = alice_api.post(f"{API}/studies/", {"images": [upload_file()], "age_years": ""}, format="multipart")
    assert r.status_code == 202
    assert Study.objects.get().age_years is None


@pytest.mark.parametrize(("name", "value"), [("sex", "X"), ("projection", "LAT")])
def test_an_invalid_choice_on_the_page_shows_why(alice, name: str, value: str) -> None:
    client = Client()
    client.force_login(alice)
    r = client.post("/upload/", {"images": [upload_file()], name: value})
    assert r.status_code == 400
    assert f"Select a valid choice. {value} is not one of the available choices." in r.content.decode()


def test_the_size_message_says_the_documented_30_mb(alice_api: APIClient) -> None:
    big = SimpleUploadedFile("big.png", b"\0" * (30 * 1024 * 1024 + 1))
    r = alice_api.post(f"{API}/studies/", {"images": [big]}, format="multipart")
    assert r.json()["errors"][0]["error"] == "the file is 31,457,281 bytes; the limit is 31,457,280 bytes (30 MB)."


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("path", "json_detail"), [(f"{API}/studies/", True), ("/upload/", False)])
def test_a_chunked_body_where_only_django_would_read_it_is_refused_with_411(path: str, json_detail: bool) -> None:
    """Django reads a body without a Content-Length as empty: an upload sent chunked would seem to hold no file.
    The client is told to send its length instead (STOW-RS reads chunked bodies: test_stow.py)."""
    body = b"--x\r\nContent-Disposition: form-data; name=images; filename=a.png\r\n\r\npng\r\n--x--\r\n"
    status, answer, stream = factories.chunked_post(path, body, CONTENT_TYPE="multipart/form-data; boundary=x")
    assert status.startswith("411") and stream.tell() == 0
    reason = json.loads(answer)["detail"] if json_detail else answer.decode()
    assert "Content-Length" in reason
    status, _, _ = factories.chunked_post("/accounts/login/", b"", REQUEST_METHOD="GET")
    assert status.startswith("200")  # a request that carries no body is not refused for being chunked


def test_a_path_under_the_api_that_names_nothing_is_a_json_404(alice_api: APIClient) -> None:
    """From a red-team pass: /api/v1/batches/not-a-uuid/ answered Django's HTML page."""
    answers = {
        "/batches/not-a-uuid/": "Not found.",
        "/studies/123/": "No such study.",
        "/studies": "Not found. API paths end with a slash.",
        "/nope/x": "Not found. API paths end with a slash.",
    }
    for path, detail in answers.items():
        r = alice_api.get(f"{API}{path}")
        assert r.status_code == 404 and r["Content-Type"] == "application/json", path
        assert r.json() == {"detail": detail}, path
