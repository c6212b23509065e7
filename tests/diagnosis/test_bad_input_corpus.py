"""Issue 11's bad-input corpus (tests/badinput.py, 75 generated cases) through the API and the upload page.

Each case ends as a 4xx with a reason, or with the bad file refused by name with a reason (and the good files
beside it stored); never a 5xx. tests/faults/test_faults.py then runs the stored studies through a real worker.
"""

from __future__ import annotations

import html
import io
from typing import Any, cast

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from diagnosis.models import Study
from diagnosis.validation import UploadError, validate_upload
from tests import badinput
from tests.factories import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles() -> None:
    """Many submissions in a few seconds: each test starts below the per-user submission rate."""
    cache.clear()


CASES = badinput.corpus()
GOOD_NAMES = {"a.png", "c.png", "good.png"}


def _files(case: badinput.Case) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(name, data, content_type="image/png") for name, data in case.files.items()]


def submit_api(client: Any, case: badinput.Case) -> Any:
    data: dict[str, Any] = dict(case.fields)
    if case.archive is not None:
        archive = io.BytesIO(case.archive)
        archive.name = "batch.zip"
        data["archive"] = archive
    else:
        data["images"] = _files(case)
    return client.post("/api/v1/studies/", data, format="multipart")


def _good_count(case: badinput.Case) -> int:
    return sum(name in GOOD_NAMES for name in case.files)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_api(alice, case: badinput.Case) -> None:
    r = submit_api(token_client(alice), case)
    assert r.status_code < 500
    assert r["Content-Type"].startswith("application/json")
    body = r.json()
    if case.may_store:
        assert r.status_code == 202 and len(body["studies"]) + len(body["errors"]) == len(case.files)
        return
    if r.status_code == 202:
        assert body["errors"], "a bad input was accepted without a word"
        assert all(e["error"] and e["file_name"] for e in body["errors"])
        if case.archive is None:
            assert len(body["studies"]) == _good_count(case)
    else:
        assert 400 <= r.status_code < 500 and body
        assert Study.objects.count() == 0


@pytest.mark.parametrize("case", [c for c in CASES if c.page], ids=[c.name for c in CASES if c.page])
def test_page(alice, case: badinput.Case) -> None:
    client = Client()
    client.force_login(alice)
    r = client.post("/upload/", {**case.fields, "images": _files(case)})
    assert r.status_code < 500
    stored = Study.objects.count()
    if case.may_store:
        return
    if r.status_code == 302:  # only when every file was stored, which a bad case must not achieve
        pytest.fail(f"redirected as if all were good: {r['Location']}")
    # good files beside the bad ones are queued: a partial success (200, each file's fate listed); none: 400
    assert r.status_code == (200 if stored else 400)
    page = r.content.decode()
    refused = [data for name, data in case.files.items() if name not in GOOD_NAMES]
    if case.fields or not refused:  # a form error: Django's error list next to the field
        assert 'class="errorlist' in page, "refused without a reason shown"
    for data in refused:  # a refused file: its reason, as the upload gate gives it, is on the page
        assert html.escape(_reason(data)) in page, f"refused without its reason: {_reason(data)!r}"
    assert stored == (_good_count(case) if not case.fields else 0)


def _reason(data: bytes) -> str:
    try:
        validate_upload("x.png", len(data), io.BytesIO(data))
    except UploadError as exc:
        return exc.message
    raise AssertionError("a good file in the corpus")


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 60
    assert sum(c.archive is not None for c in CASES) >= len(badinput.BROKEN_ZIPS)


STOW_CASES = badinput.stow_corpus()


@pytest.mark.parametrize("name", STOW_CASES)
def test_stow(alice, name: str) -> None:
    content_type, body = STOW_CASES[name]
    r = token_client(alice).generic("POST", "/dicomweb/studies", cast(Any, body), content_type=content_type)
    assert 400 <= r.status_code < 500, (r.status_code, r.content[:300])
    assert b"detail" in r.content or b"00000902" in r.content  # a reason: the error's, or each part's
    assert not Study.objects.exists()
