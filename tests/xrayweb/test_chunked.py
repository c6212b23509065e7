"""xrayweb.chunked: a body sent with Transfer-Encoding: chunked (no Content-Length) reaches Django whole, where the
server decoded the chunks (gunicorn: wsgi.input_terminated). The live round trip from Orthanc's DICOMweb client
through gunicorn is in tests/integration/test_orthanc.py."""

from __future__ import annotations

import io
import json
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from rest_framework.authtoken.models import Token

from diagnosis.models import Study
from tests import dicoms, images
from xrayweb.chunked import ChunkedBodies
from xrayweb.wsgi import application


def _environ(body: bytes, terminated: bool = True, **more: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": terminated,
        **more,
    }
    setup_testing_defaults(environ)
    return environ


def _seen(environ: dict[str, Any]) -> tuple[str | None, bytes]:
    seen: dict[str, Any] = {}

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(length=env.get("CONTENT_LENGTH"), body=env["wsgi.input"].read())
        return []

    ChunkedBodies(app)(environ, lambda *a: None)
    return seen["length"], seen["body"]


def test_a_body_the_server_decoded_is_handed_on_with_its_length(settings: Any) -> None:
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000  # past this the body spools to disk: the same bytes come back
    body = bytes(range(256)) * 400
    assert _seen(_environ(body)) == (str(len(body)), body)


def test_a_body_past_the_request_limit_is_cut_there_and_refused_for_its_length(settings: Any) -> None:
    settings.MAX_REQUEST_BYTES = 5000
    length, body = _seen(_environ(b"x" * 20000))
    assert (length, len(body)) == ("5001", 5001)  # RequestSizeLimitMiddleware refuses it for that length
    status: list[str] = []
    environ = _environ(b"x" * 20000, PATH_INFO="/dicomweb/studies")
    application(environ, lambda s, h, *a: status.append(s))
    assert status == ["413 Request Entity Too Large"]


def test_a_request_the_server_did_not_decode_or_with_a_length_is_left_as_it_is() -> None:
    assert _seen(_environ(b"5\r\nhello\r\n0\r\n\r\n", terminated=False)) == (None, b"5\r\nhello\r\n0\r\n\r\n")
    assert _seen(_environ(b"hello", CONTENT_LENGTH="3")) == ("3", b"hello")


@pytest.mark.django_db(transaction=True)
def test_a_chunked_stow_rs_request_stores_its_instance(alice: Any) -> None:
    """Through the whole application, as gunicorn hands it a chunked STOW-RS request (Orthanc sends them so): the
    instance is stored. Without the wrapper the body arrived empty and the request was refused with a 400."""
    content_type, body = dicoms.stow_body(dicoms.radiograph(images.chest_like(400, 300)))
    token = Token.objects.create(user=alice).key
    environ = _environ(
        body,
        PATH_INFO="/dicomweb/studies",
        CONTENT_TYPE=content_type,
        HTTP_AUTHORIZATION=f"Token {token}",
        HTTP_ACCEPT="application/dicom+json",
    )
    status: list[str] = []
    answer = b"".join(application(environ, lambda s, h, *a: status.append(s)))
    assert status == ["200 OK"], answer[:500]
    assert len(json.loads(answer)["00081199"]["Value"]) == 1  # ReferencedSOPSequence: the stored instance
    assert Study.objects.filter(owner=alice).count() == 1
