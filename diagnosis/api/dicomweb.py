"""DICOMweb STOW-RS (PS3.18 10.5): `POST /dicomweb/studies[/{StudyInstanceUID}]` with a
`multipart/related; type="application/dicom"` body. Token (or session) authentication and the permission of the
API's study submission (a member of a clinic); each part goes through the same intake as an upload (validation,
de-identification, the queue), into the caller's clinic, as one batch.

The answer is the standard store response in application/dicom+json: ReferencedSOPSequence (0008,1199) for the
stored instances (their SOP class and instance UIDs as sent, and a RetrieveURL: the study in the REST API),
FailedSOPSequence (0008,1198) with a FailureReason (0008,1197) for the refused ones, each with the reason in
ErrorComment (0000,0902). 200: all stored; 202: some refused; 409: none stored; 415: not multipart/related of
application/dicom; 400: a malformed body or Study Instance UID; 413: a body over max_bytes() (errors are
{"detail": reason} in JSON, as elsewhere in the API). A chunked body is read too (_read_body).

The body is parsed as it is read, CHUNK bytes at a time, each part streamed to a temporary file (base64 or
quoted-printable parts decoded there), so a large body keeps memory flat; only the part being judged is read whole,
as an upload is. An application/dicom part must be a DICOM Part 10 file: a JPEG, PNG or HTML page sent as one is
refused as not DICOM, naming what it is. A session (browser) request needs its CSRF token (403 without).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import logging
import quopri
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from typing import IO, Any, cast

import pydicom
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from gunicorn.http.errors import ParseException
from pydicom.dataset import Dataset
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from diagnosis import intake, limits
from diagnosis.api.authentication import TokenAuthentication
from diagnosis.api.throttles import ScopedRateThrottle
from diagnosis.audit import Origin
from diagnosis.models import Study
from worker.ml.dicom import PREAMBLE_END, is_dicom

logger = logging.getLogger(__name__)
DICOM_JSON = "application/dicom+json"
CANNOT_UNDERSTAND = 0xC000  # the part is not something the service judges (the reason says why)
STUDY_MISMATCH = 0xA900  # the instance's Study Instance UID is not the one in the URL
PROCESSING_FAILURE = 0x0110  # the service could not store it; try again
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class DicomJSONRenderer(JSONRenderer):
    media_type = DICOM_JSON


class FirstRenderer(BaseContentNegotiation):
    """The answer is application/dicom+json whatever Accept says (errors too, as DRF's {"detail": ...})."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class BadBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Part:
    """One part of the body, on disk (a temporary file, gone when closed); decoded from base64 or
    quoted-printable where its Content-Transfer-Encoding says so."""

    index: int
    file: IO[bytes]
    size: int
    refused: str = ""  # why the part is refused before the intake (another content type, not DICOM)

    def head(self, size: int = PREAMBLE_END) -> bytes:
        self.file.seek(0)
        data = self.file.read(size)
        self.file.seek(0)
        return data


@dataclass
class Outcome:
    sop_class_uid: str
    sop_uid: str
    study: Study | None = None
    failure: int = 0
    reason: str = ""


CHUNK = 1 << 20  # the body is read this much at a time, and written to the parts' files
MAX_PART_HEADERS = 16 * 1024
TRANSFER_DECODERS: dict[str, Callable[[IO[bytes], IO[bytes]], None]] = {
    "base64": base64.decode,
    "quoted-printable": quopri.decode,
}


def boundary_of(content_type: str) -> bytes:
    """The boundary of a multipart/related Content-Type of application/dicom; raises BadBody (415 or 400)."""
    head = Message()
    head["Content-Type"] = content_type
    if head.get_content_type() != "multipart/related":
        raise BadBody(415, 'Send multipart/related; type="application/dicom".')
    root_type = str(head.get_param("type") or "").lower()
    if root_type != "application/dicom":
        raise BadBody(415, f'The multipart/related type must be "application/dicom", not "{root_type}".')
    boundary = head.get_boundary()
    if not boundary:
        raise BadBody(400, "The Content-Type has no boundary.")
    return boundary.encode("latin-1", "replace")


class _Body:
    """The request body, read CHUNK bytes at a time, at most `limit` of them (413 beyond)."""

    def __init__(self, read: Callable[[int], bytes], limit: int) -> None:
        self._read, self.limit, self.total, self.ended = read, limit, 0, False
        self.buffer = bytearray(b"\r\n")  # so that a delimiter at the very start is found like any other

    def more(self) -> None:
        try:
            chunk = self._read(min(CHUNK, self.limit + 1 - self.total))
        except (OSError, ValueError, ParseException) as exc:  # gunicorn: InvalidChunkSize..., NoMoreData (OSError)
            logger.info("STOW-RS body not read: %s: %s", type(exc).__name__, exc)
            raise BadBody(400, "The body could not be read: its chunks are malformed, or it was cut short.") from exc
        self.total += len(chunk)
        if self.total > self.limit:
            raise BadBody(413, f"The body is larger than {self.limit / 2**20:.0f} MB; send fewer instances at a time.")
        self.ended = not chunk
        self.buffer += chunk

    def until(self, marker: bytes, out: IO[bytes] | None, at_most: int | None = None) -> bool:
        """Move the bytes before `marker` to `out` (None: drop them) and drop the marker; False at the body's end
        without it (or past at_most bytes)."""
        moved = 0
        while True:
            found = self.buffer.find(marker)
            if found >= 0:
                if out is not None:
                    out.write(self.buffer[:found])
                del self.buffer[: found + len(marker)]
                return True
            keep = len(marker) - 1
            if len(self.buffer) > keep:
                flushed = len(self.buffer) - keep
                if out is not None:
                    out.write(self.buffer[:flushed])
                del self.buffer[:flushed]
                moved += flushed
            if self.ended or (at_most is not None and moved > at_most):
                return False
            self.more()

    def peek(self, size: int) -> bytes:
        while len(self.buffer) < size and not self.ended:
            self.more()
        return bytes(self.buffer[:size])


def parse(content_type: str, read: Callable[[int], bytes], limit: int) -> list[Part]:
    """The parts of a multipart/related body of application/dicom, each streamed to a temporary file as it is
    read (memory stays flat however large the body); raises BadBody (415, 400 or 413). The caller closes the
    parts' files (close_parts)."""
    boundary = boundary_of(content_type)
    body = _Body(read, limit)
    delimiter = b"\r\n--" + boundary
    parts: list[Part] = []
    try:
        if not body.until(delimiter, None):
            raise BadBody(400, "The multipart body is malformed (no boundary in the body).")
        while True:
            after = body.peek(2)
            if after == b"--":
                break  # the close delimiter; an epilogue after it is ignored
            if not body.until(b"\r\n", None, at_most=1024):  # the rest of the boundary line (transport padding)
                raise BadBody(400, "The multipart body is malformed (a boundary line does not end).")
            parts.append(_part(body, len(parts) + 1, delimiter))
    except BaseException:
        close_parts(parts)
        raise
    if not parts:
        raise BadBody(400, "The multipart body has no parts.")
    return parts


def _part(body: _Body, index: int, delimiter: bytes) -> Part:
    raw = io.BytesIO()
    if body.peek(2) == b"\r\n":  # no headers at all
        del body.buffer[:2]
    elif not body.until(b"\r\n\r\n", raw, at_most=MAX_PART_HEADERS):
        raise BadBody(400, f"The multipart body is malformed (part {index}'s headers do not end).")
    headers = email.parser.BytesHeaderParser(policy=email.policy.HTTP).parsebytes(raw.getvalue() + b"\r\n\r\n")
    declared = headers.get_content_type() if headers["Content-Type"] else "application/dicom"
    if declared.startswith("multipart/"):
        raise BadBody(400, f"Part {index} is itself multipart.")
    file: IO[bytes] = tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR)  # noqa: SIM115 (close_parts)
    try:
        if not body.until(delimiter, file):
            raise BadBody(400, f"The multipart body is malformed (part {index} does not end with a boundary).")
        encoding = str(headers.get("Content-Transfer-Encoding", "")).strip().lower()
        if encoding in TRANSFER_DECODERS:
            file = _decoded(file, TRANSFER_DECODERS[encoding])
    except BaseException:
        file.close()
        raise
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    refused = "" if declared == "application/dicom" else f"the part is {declared}, not application/dicom."
    return Part(index, file, size, refused)


def _decoded(encoded: IO[bytes], decode: Callable[[IO[bytes], IO[bytes]], None]) -> IO[bytes]:
    decoded = tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR)  # noqa: SIM115 (close_parts)
    with encoded:
        encoded.seek(0)
        decode(encoded, decoded)
    return decoded


def close_parts(parts: Iterable[Part]) -> None:
    for part in parts:
        part.file.close()


def not_dicom(head: bytes) -> str:
    """Why an application/dicom part that is not a DICOM Part 10 file is refused, naming what it looks like."""
    text = head.lstrip()[:15].lower()
    if head.startswith(b"\xff\xd8\xff"):
        what = "a JPEG image"
    elif head.startswith(b"\x89PNG"):
        what = "a PNG image"
    elif text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        what = "an HTML page"
    elif head.startswith(b"%PDF"):
        what = "a PDF document"
    else:
        what = "something else"
    return (
        f"the part is not DICOM (it is {what}): an application/dicom part must be a DICOM Part 10 file "
        "(a 128-byte preamble, then DICM)."
    )


def _uids(file: IO[bytes]) -> tuple[str, str, str]:
    """SOP class, SOP instance and Study Instance UIDs as sent (empty where the part does not say)."""
    try:
        file.seek(0)
        ds = pydicom.dcmread(file, stop_before_pixels=True, force=True)
        return (str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", "")), str(ds.get("StudyInstanceUID", "")))
    except Exception:  # whatever the part is, it is judged (and refused) by the intake
        return "", "", ""
    finally:
        file.seek(0)


def store(owner: User, parts: list[Part], study_uid: str, origin: Origin) -> list[Outcome]:
    """Each part through the intake on its own: a refused one does not stop the others."""
    batch = intake.new_batch(owner)
    priority = intake.priority_of(len(parts))
    outcomes = []
    for part in parts:
        head = part.head()
        dicom = is_dicom(head)
        sop_class, sop, study = _uids(part.file) if dicom else ("", "", "")
        outcome = Outcome(sop_class, sop)
        outcomes.append(outcome)
        if part.refused or not dicom:
            outcome.failure, outcome.reason = CANNOT_UNDERSTAND, part.refused or not_dicom(head)
            continue
        if study_uid and study != study_uid:
            outcome.failure = STUDY_MISMATCH
            outcome.reason = f"the instance's Study Instance UID is not {study_uid}."
            continue
        name = f"{sop or f'part-{part.index}'}.dcm"[:200]
        upload = UploadedFile(part.file, name, "application/dicom", part.size)
        try:
            submission = intake.submit_files(owner, [upload], batch=batch, origin=origin, priority=priority)
        except Exception:  # a failure to store is this instance's answer, never a 500
            logger.exception("STOW-RS: could not store part %s", part.index)
            outcome.failure, outcome.reason = PROCESSING_FAILURE, "the service could not store the instance; try again."
            continue
        if submission.errors:
            outcome.failure, outcome.reason = CANNOT_UNDERSTAND, submission.errors[0].message
        else:
            outcome.study = submission.studies[0]
    return outcomes


def response_dataset(request: Request, outcomes: list[Outcome]) -> Dataset:
    answer = Dataset()
    answer.ReferencedSOPSequence = []
    answer.FailedSOPSequence = []
    for outcome in outcomes:
        item = Dataset()
        if outcome.sop_class_uid:
            item.ReferencedSOPClassUID = outcome.sop_class_uid
        if outcome.sop_uid:
            item.ReferencedSOPInstanceUID = outcome.sop_uid
        if outcome.study is not None:
            url = reverse("api:study-detail", kwargs={"pk": outcome.study.pk})
            item.RetrieveURL = request.build_absolute_uri(url)
            answer.ReferencedSOPSequence.append(item)
        else:
            item.FailureReason = outcome.failure
            item.add_new(0x00000902, "LT", outcome.reason)  # ErrorComment, as in a C-STORE response (any length)
            answer.FailedSOPSequence.append(item)
    return answer


def _status(outcomes: list[Outcome]) -> int:
    stored = sum(o.study is not None for o in outcomes)
    return 200 if stored == len(outcomes) else 202 if stored else 409


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


def _json(ds: Dataset) -> str:
    return cast(str, ds.to_json())


def max_bytes() -> int:
    """The largest body taken: eight files of the upload limit (each part is streamed to disk as it is read)."""
    return int(min(settings.MAX_REQUEST_BYTES, 8 * settings.MAX_UPLOAD_BYTES))


def _body_reader(request: Request) -> Callable[[int], bytes]:
    """How the body is read, once the caller is authenticated and allowed to store: at most max_bytes() (413
    beyond, also for a declared Content-Length). A chunked body (Transfer-Encoding: chunked, as Orthanc's DICOMweb
    client sends) has no Content-Length, and Django reads such a body as empty (Django ticket #35838, fixed after
    the 5.2 series): where the server decoded the chunks and says so (wsgi.input_terminated: gunicorn does), it is
    read from the server's stream to its end instead."""
    limit = max_bytes()
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise BadBody(413, f"The body is larger than {limit / 2**20:.0f} MB; send fewer instances at a time.")
    stream = request.META["wsgi.input"] if limits.is_chunked(request.META) else request._request
    return cast(Callable[[int], bytes], stream.read)


class StowSessionAuthentication(SessionAuthentication):
    """A browser session, with Django's CSRF check made on Django's own request: DRF's reads request.POST through
    the view's parsers, and this view has none (its body is read as it is parsed), so a session request without a
    CSRF token was answered 415 (unsupported media type) instead of 403."""

    def enforce_csrf(self, request: Request) -> None:
        super().enforce_csrf(cast(Request, request._request))


class StowSessionScheme(SessionScheme):
    """The OpenAPI schema's name for that session authentication: Django's session cookie, as everywhere else."""

    target_class = "diagnosis.api.dicomweb.StowSessionAuthentication"
    name = "stowCookieAuth"  # the same cookie; a name of its own, as the schema's components must differ


STOW_REQUEST = {"multipart/related": OpenApiTypes.BINARY}
STOW_RESPONSES = {(200, DICOM_JSON): OpenApiTypes.OBJECT, (202, DICOM_JSON): OpenApiTypes.OBJECT}


class StowView(APIView):
    """Store instances (STOW-RS). Each becomes a study of the caller's clinic, as an upload does."""

    parser_classes: list[Any] = []  # the body is read here, as multipart/related
    renderer_classes = [DicomJSONRenderer]
    content_negotiation_class = FirstRenderer
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "submissions"
    authentication_classes = [TokenAuthentication, StowSessionAuthentication]

    @extend_schema(operation_id="dicomweb_store", request=STOW_REQUEST, responses=STOW_RESPONSES)
    def post(self, request: Request, study_uid: str = "") -> HttpResponse:
        if study_uid and (len(study_uid) > 64 or not UID.match(study_uid)):
            return _error(400, "The Study Instance UID in the URL is not a UID.")
        content_type = request.META.get("CONTENT_TYPE", "")
        try:
            boundary_of(content_type)  # a wrong Content-Type is answered before a byte of the body is read
            parts = parse(content_type, _body_reader(request), max_bytes())
        except BadBody as exc:
            return _error(exc.status, str(exc))
        try:
            outcomes = store(cast(User, request.user), parts, study_uid, Origin.of(request))
        finally:
            close_parts(parts)
        answer = _json(response_dataset(request, outcomes))
        return HttpResponse(answer, status=_status(outcomes), content_type=DICOM_JSON)


class StowStudyView(StowView):
    """STOW-RS into one study (/dicomweb/studies/{StudyInstanceUID}): its own operation in the schema."""

    @extend_schema(operation_id="dicomweb_store_in_study", request=STOW_REQUEST, responses=STOW_RESPONSES)
    def post(self, request: Request, study_uid: str = "") -> HttpResponse:
        return super().post(request, study_uid)
