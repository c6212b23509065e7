"""DICOMweb STOW-RS: each part through the same intake as an upload, into the caller's clinic, answered with the
standard store response (stored instances, refused ones with a reason), never a 5xx."""

from __future__ import annotations

import base64
import io
import json
import tracemalloc
from typing import Any, cast

import pydicom
import pytest
from django.urls import reverse
from gunicorn.http.errors import InvalidChunkSize, NoMoreData
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from diagnosis.models import DicomInstance, InferenceJob, Study
from tests import dicoms, factories, images

pytestmark = pytest.mark.django_db
STOW = "/dicomweb/studies"


def _radiograph(**header: Any) -> bytes:
    return dicoms.radiograph(images.chest_like(), "mono2_8bit", PatientAge="004Y", **header)


def _post(client: APIClient, *parts: bytes | tuple[bytes, str], url: str = STOW) -> Any:
    content_type, body = dicoms.stow_body(*parts)
    return _raw(client, body, content_type, url, HTTP_ACCEPT="application/dicom+json")


def _raw(client: APIClient, body: bytes, content_type: str, url: str = STOW, **extra: Any) -> Any:
    return client.generic("POST", url, cast(Any, body), content_type=content_type, **extra)


def _seq(answer: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    return list(answer.get(tag, {}).get("Value", []))


def test_stored_instances_become_queued_deidentified_studies_of_the_callers_clinic(alice, alice_api) -> None:
    first, second = _radiograph(), dicoms.radiograph(images.chest_like(), "jpeg_lossless_12bit")
    response = _post(alice_api, first, second)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/dicom+json"
    answer = response.json()
    stored = _seq(answer, "00081199")
    assert len(stored) == 2 and not _seq(answer, "00081198")
    sent = pydicom.dcmread(pydicom.filebase.DicomBytesIO(first))
    assert stored[0]["00081155"]["Value"] == [sent.SOPInstanceUID]
    assert stored[0]["00081150"]["Value"] == [sent.SOPClassUID]
    study = Study.objects.get(dicom__sop_uid=sent.SOPInstanceUID)
    assert study.clinic == alice.membership.clinic and study.owner == alice and study.batch is not None
    assert stored[0]["00081190"]["Value"][0].endswith(reverse("api:study-detail", kwargs={"pk": study.pk}))
    assert study.age_years == 4 and study.patient_ref == "MRN-0042"
    assert DicomInstance.objects.get(study=study).study_uid == sent.StudyInstanceUID
    with study.image.open("rb") as fh:  # the stored copy is de-identified, as for an upload
        kept = pydicom.dcmread(fh)
    assert str(kept.PatientName) == "" and kept.SOPInstanceUID != sent.SOPInstanceUID
    assert InferenceJob.objects.filter(study__in=Study.objects.all()).count() == 2


def test_some_refused_is_202_with_the_reasons(alice_api) -> None:
    ct = dicoms.radiograph(images.chest_like(), "mono2_8bit", modality="CT")
    response = _post(alice_api, _radiograph(), ct, (b"hello", "text/plain"))
    assert response.status_code == 202, response.content
    answer = response.json()
    assert len(_seq(answer, "00081199")) == 1
    failed = _seq(answer, "00081198")
    assert [f["00081197"]["Value"] for f in failed] == [[0xC000], [0xC000]]
    assert "CT" in failed[0]["00000902"]["Value"][0]
    assert failed[0]["00081155"]["Value"] == [pydicom.dcmread(pydicom.filebase.DicomBytesIO(ct)).SOPInstanceUID]
    assert "text/plain" in failed[1]["00000902"]["Value"][0]
    assert Study.objects.count() == 1


def test_all_refused_is_409(alice_api) -> None:
    response = _post(alice_api, dicoms.encapsulated_pdf(), b"not a dicom")
    assert response.status_code == 409, response.content
    assert len(_seq(response.json(), "00081198")) == 2 and not Study.objects.exists()


def test_study_in_the_url_refuses_instances_of_another_study(alice_api) -> None:
    mine, other = _radiograph(StudyInstanceUID="1.2.3.4"), _radiograph()
    response = _post(alice_api, mine, other, url=f"{STOW}/1.2.3.4")
    assert response.status_code == 202, response.content
    failed = _seq(response.json(), "00081198")
    assert failed[0]["00081197"]["Value"] == [0xA900]
    assert _post(alice_api, mine, url=f"{STOW}/not-a-uid").status_code == 400


def test_a_base64_part_is_decoded(alice_api) -> None:
    content_type, _ = dicoms.stow_body(b"")
    body = (
        b"--stow-boundary-42\r\nContent-Type: application/dicom\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(_radiograph())
        + b"\r\n--stow-boundary-42--\r\n"
    )
    response = _raw(alice_api, body, content_type)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "content_type",
    [
        "application/dicom",
        "multipart/form-data; boundary=x",
        'multipart/related; type="application/dicom+xml"; boundary=x',
        "multipart/related; boundary=x",
        "",
    ],
)
def test_wrong_content_type_is_415(alice_api, content_type: str) -> None:
    response = _raw(alice_api, _radiograph(), content_type)
    assert response.status_code == 415, response.content
    assert response.json()["detail"] and not Study.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"no boundary here at all",
        b"--stow-boundary-42\r\nContent-Type: application/dicom\r\n\r\nunterminated",
        b"--stow-boundary-42--\r\n",
    ],
)
def test_malformed_body_is_400(alice_api, body: bytes) -> None:
    content_type, _ = dicoms.stow_body(b"")
    response = _raw(alice_api, body, content_type)
    assert response.status_code == 400, response.content
    assert not Study.objects.exists()


def test_missing_boundary_is_400(alice_api) -> None:
    response = _raw(alice_api, b"x", 'multipart/related; type="application/dicom"')
    assert response.status_code == 400


def test_too_large_is_413(alice_api, settings) -> None:
    settings.MAX_UPLOAD_BYTES = 1024
    response = _post(alice_api, _radiograph())
    assert response.status_code == 413


def test_each_clinic_stores_into_its_own_and_cannot_read_the_others(alice_api, bob, bob_api) -> None:
    response = _post(bob_api, _radiograph())
    assert response.status_code == 200
    study = Study.objects.get()
    assert study.clinic == bob.membership.clinic and study.owner == bob
    url = response.json()["00081199"]["Value"][0]["00081190"]["Value"][0]
    assert alice_api.get(url).status_code == 404 and bob_api.get(url).status_code == 200


def test_anonymous_and_bad_tokens_are_refused(alice_api) -> None:
    content_type, body = dicoms.stow_body(_radiograph())
    assert _raw(APIClient(), body, content_type).status_code == 401
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token nope")
    assert _raw(stranger, body, content_type).status_code == 401
    assert not Study.objects.exists()


def test_a_failure_to_store_is_a_failed_instance_not_a_500(alice_api, monkeypatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("diagnosis.intake.store", boom)
    response = _post(alice_api, _radiograph())
    assert response.status_code == 409
    assert _seq(response.json(), "00081198")[0]["00081197"]["Value"] == [0x0110]


def _chunked_stow(alice: Any, body: bytes, authorized: bool = True, **environ: Any) -> tuple[str, bytes, Any]:
    content_type = dicoms.stow_body(b"")[0]
    token = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=alice).key}"} if authorized else {}
    return factories.chunked_post(
        STOW, body, CONTENT_TYPE=content_type, HTTP_ACCEPT="application/dicom+json", **token, **environ
    )


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_is_read_and_its_instance_stored(alice: Any) -> None:
    """Orthanc's DICOMweb client sends STOW-RS chunked (no Content-Length), which Django alone reads as empty: it
    was refused as a malformed body. The live push from a real Orthanc is in tests/integration/test_orthanc.py."""
    status, answer, _ = _chunked_stow(alice, dicoms.stow_body(_radiograph())[1])
    assert status == "200 OK", answer[:300]
    assert len(json.loads(answer)["00081199"]["Value"]) == 1
    assert Study.objects.filter(owner=alice).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_is_read_only_for_an_allowed_caller_and_no_further_than_the_limit(alice: Any, settings) -> None:
    body = dicoms.stow_body(_radiograph())[1]
    status, _, stream = _chunked_stow(alice, body, authorized=False)
    assert status.startswith(("401", "403")) and stream.tell() == 0  # not a byte read before authentication
    settings.MAX_UPLOAD_BYTES = 1024  # STOW takes at most 8 of them
    status, answer, stream = _chunked_stow(alice, body * 4)
    assert status.startswith("413") and "larger than" in json.loads(answer)["detail"]
    assert stream.tell() == 8 * 1024 + 1
    assert not Study.objects.exists()


class _BrokenChunks(io.RawIOBase):
    """gunicorn's decoded chunked stream, as it reads a body whose chunks are malformed or that stops part way."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def read(self, size: int = -1) -> bytes:
        raise self.error


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("error", [InvalidChunkSize(b"zz"), NoMoreData(b"ab")], ids=["bad chunk size", "cut short"])
def test_a_chunked_body_that_cannot_be_read_is_a_400_not_a_500(alice: Any, error: Exception) -> None:
    """From an outside red-team pass: these gave 500 with gunicorn's traceback."""
    broken: dict[str, Any] = {"wsgi.input": _BrokenChunks(error)}
    status, answer, _ = _chunked_stow(alice, b"", **broken)
    assert status.startswith("400") and "cut short" in json.loads(answer)["detail"]
    assert not Study.objects.exists()


def test_an_instance_sent_again_maps_to_the_study_that_has_it(alice_api) -> None:
    """Issue 28: a re-sent instance (twice in one request, or again later) is answered with the study that holds
    it, stored and queued once."""
    data = _radiograph()
    twice = _post(alice_api, data, data)
    assert twice.status_code == 200, twice.content
    urls = [item["00081190"]["Value"][0] for item in _seq(twice.json(), "00081199")]
    again = _post(alice_api, data)
    assert again.status_code == 200
    assert _seq(again.json(), "00081199")[0]["00081190"]["Value"][0] == urls[0] == urls[1]
    assert Study.objects.count() == 1 and InferenceJob.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (images.jpeg(), "a JPEG image"),
        (images.png(), "a PNG image"),
        (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "an HTML page"),
    ],
    ids=["jpeg", "png", "html"],
)
def test_what_is_not_dicom_in_an_application_dicom_part_is_refused_as_not_dicom(alice_api, data, what) -> None:
    """From an outside red-team pass: a JPEG sent as an application/dicom part was stored as a study named
    part-1.dcm, and an HTML one was refused as "not a JPEG or PNG image": only DICOM belongs there."""
    response = _post(alice_api, data)
    assert response.status_code == 409, response.content
    reason = _seq(response.json(), "00081198")[0]["00000902"]["Value"][0]
    assert "not DICOM" in reason and what in reason and "JPEG or PNG" not in reason
    assert not Study.objects.exists()


def test_a_session_request_without_its_csrf_token_is_403_not_415(alice) -> None:
    """From an outside red-team pass: DRF's CSRF check read the body through this view's parsers (none), so a
    browser session's request without its token (the cookie sent, as a browser does) was answered 415."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/accounts/login/")  # a page sets the CSRF cookie, which the browser sends with every request
    token = client.cookies["csrftoken"].value
    content_type, body = dicoms.stow_body(_radiograph())
    response = _raw(client, body, content_type)
    assert response.status_code == 403, response.content
    assert "CSRF" in response.json()["detail"] and not Study.objects.exists()
    assert _raw(client, body, content_type, HTTP_X_CSRFTOKEN=token).status_code == 200


def test_parts_split_across_reads_and_transport_padding_are_parsed(alice_api, monkeypatch) -> None:
    monkeypatch.setattr("diagnosis.api.multipart.CHUNK", 7)  # every delimiter and header falls across reads
    content_type, _ = dicoms.stow_body(b"")
    first, second = _radiograph(), _radiograph()
    body = (
        b"preamble\r\n--stow-boundary-42  \r\nContent-Type: application/dicom\r\n\r\n" + first
        + b"\r\n--stow-boundary-42\r\n\r\n" + second + b"\r\n--stow-boundary-42--\r\nepilogue"
    )  # fmt: skip
    response = _raw(alice_api, body, content_type)
    assert response.status_code == 200, response.content
    assert Study.objects.count() == 2


class _LazyBody(io.RawIOBase):
    """A large STOW-RS body made as it is read (so that the test itself holds none of it): `junk` MB of
    application/dicom parts that are not DICOM, then one radiograph."""

    def __init__(self, junk_mb: int, radiograph: bytes) -> None:
        part = b"--stow-boundary-42\r\nContent-Type: application/dicom\r\n\r\n"
        self.pieces = [part + b"\0" * (2**20 - len(part) - 2) + b"\r\n"] * junk_mb
        self.pieces.append(part + radiograph + b"\r\n--stow-boundary-42--\r\n")
        self.size = sum(len(p) for p in self.pieces)
        self.at, self.buffer = 0, b""

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self.buffer) < size) and self.at < len(self.pieces):
            self.buffer += self.pieces[self.at]
            self.at += 1
        size = len(self.buffer) if size < 0 else size
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


def _peak_of_a_stow(alice: Any, junk_mb: int, traced: bool = True) -> int:
    """The largest memory the request allocated (tracemalloc), for a body of junk_mb MB and a radiograph."""
    body = _LazyBody(junk_mb, _radiograph())
    token = Token.objects.get_or_create(user=alice)[0].key
    environ = {"CONTENT_LENGTH": str(body.size), "HTTP_TRANSFER_ENCODING": "", "wsgi.input_terminated": False}
    if traced:
        tracemalloc.start()
    try:
        status, answer, _ = factories.chunked_post(
            STOW,
            b"",
            CONTENT_TYPE=dicoms.stow_body(b"")[0],
            HTTP_AUTHORIZATION=f"Token {token}",
            **{**environ, "wsgi.input": body},
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()  # nothing when not started
    assert status.startswith("202"), answer[:300]  # the radiograph stored, each junk part refused as not DICOM
    assert len(json.loads(answer)["00081198"]["Value"]) == junk_mb
    return peak


@pytest.mark.django_db(transaction=True)
def test_a_large_body_is_streamed_to_disk_and_memory_stays_flat(alice: Any, settings) -> None:
    """From an outside red-team pass: a 200 MB body took a web worker from 142 MB to 877 MB (the body whole in
    memory, then the MIME parser's copies). Each part now goes to disk as it is read: 96 MB of body takes no
    more memory than 8 MB does."""
    settings.MAX_UPLOAD_BYTES, settings.MAX_REQUEST_BYTES = 16 * 2**20, 256 * 2**20  # a 128 MB body at most
    _peak_of_a_stow(alice, 1, traced=False)  # the first request's imports and caches are not the body's
    small, large = _peak_of_a_stow(alice, 8), _peak_of_a_stow(alice, 96)
    print(f"\nSTOW-RS memory peak: {small / 2**20:.1f} MB for an 8 MB body, {large / 2**20:.1f} MB for 96 MB")
    assert large < small + 8 * 2**20, (small / 2**20, large / 2**20)
    assert large < 48 * 2**20
