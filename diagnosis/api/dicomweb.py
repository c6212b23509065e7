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

The body is parsed by the standard library's MIME parser (email), which also decodes base64 or
quoted-printable parts.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from typing import Any, cast

import pydicom
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from gunicorn.http.errors import ParseException
from pydicom.dataset import Dataset
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from diagnosis import intake, limits
from diagnosis.api.throttles import ScopedRateThrottle
from diagnosis.audit import Origin
from diagnosis.models import Study

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
    index: int
    data: bytes
    refused: str = ""  # why the part is refused before the intake (another content type)


@dataclass
class Outcome:
    sop_class_uid: str
    sop_uid: str
    study: Study | None = None
    failure: int = 0
    reason: str = ""


def parse(content_type: str, body: bytes) -> list[Part]:
    """The parts of a multipart/related body of application/dicom; raises BadBody (415 or 400)."""
    head = Message()
    head["Content-Type"] = content_type
    if head.get_content_type() != "multipart/related":
        raise BadBody(415, 'Send multipart/related; type="application/dicom".')
    root_type = str(head.get_param("type") or "").lower()
    if root_type != "application/dicom":
        raise BadBody(415, f'The multipart/related type must be "application/dicom", not "{root_type}".')
    if not head.get_boundary():
        raise BadBody(400, "The Content-Type has no boundary.")
    raw = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    if message.defects or not message.is_multipart():
        names = ", ".join(type(d).__name__ for d in message.defects) or "no parts"
        raise BadBody(400, f"The multipart body is malformed ({names}).")
    parts = []
    for index, part in enumerate(cast(list[Message], message.get_payload()), start=1):
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            raise BadBody(400, f"Part {index} is itself multipart.")
        declared = part.get_content_type() if part["Content-Type"] else "application/dicom"
        refused = "" if declared == "application/dicom" else f"the part is {declared}, not application/dicom."
        parts.append(Part(index, data, refused))
    if not parts:
        raise BadBody(400, "The multipart body has no parts.")
    return parts


def _uids(data: bytes) -> tuple[str, str, str]:
    """SOP class, SOP instance and Study Instance UIDs as sent (empty where the part does not say)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        return (str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", "")), str(ds.get("StudyInstanceUID", "")))
    except Exception:  # whatever the part is, it is judged (and refused) by the intake
        return "", "", ""


def store(owner: User, parts: list[Part], study_uid: str, origin: Origin) -> list[Outcome]:
    """Each part through the intake on its own: a refused one does not stop the others."""
    batch = intake.new_batch(owner)
    priority = intake.priority_of(len(parts))
    outcomes = []
    for part in parts:
        sop_class, sop, study = _uids(part.data)
        outcome = Outcome(sop_class, sop)
        outcomes.append(outcome)
        if part.refused:
            outcome.failure, outcome.reason = CANNOT_UNDERSTAND, part.refused
            continue
        if study_uid and study != study_uid:
            outcome.failure = STUDY_MISMATCH
            outcome.reason = f"the instance's Study Instance UID is not {study_uid}."
            continue
        upload = SimpleUploadedFile(f"{sop or f'part-{part.index}'}.dcm"[:200], part.data, "application/dicom")
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
    """The body is held in memory while it is parsed: at most eight files of the upload limit."""
    return int(min(settings.MAX_REQUEST_BYTES, 8 * settings.MAX_UPLOAD_BYTES))


def _read_body(request: Request) -> bytes:
    """The body, at most max_bytes(); read here, once the caller is authenticated and allowed to store. A chunked
    body (Transfer-Encoding: chunked, as Orthanc's DICOMweb client sends) has no Content-Length, and Django reads
    such a body as empty (Django ticket #35838, fixed after the 5.2 series): where the server decoded the chunks and
    says so (wsgi.input_terminated: gunicorn does), it is read from the server's stream to its end instead."""
    limit = max_bytes()
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise BadBody(413, f"The body is larger than {limit / 2**20:.0f} MB; send fewer instances at a time.")
    stream = request.META["wsgi.input"] if limits.is_chunked(request.META) else request._request
    try:
        body = stream.read(limit + 1)
    except (OSError, ValueError, ParseException) as exc:  # gunicorn: InvalidChunkSize..., NoMoreData (an OSError)
        logger.info("STOW-RS body not read: %s: %s", type(exc).__name__, exc)
        raise BadBody(400, "The body could not be read: its chunks are malformed, or it was cut short.") from exc
    if len(body) > limit:
        raise BadBody(413, f"The body is larger than {limit / 2**20:.0f} MB; send fewer instances at a time.")
    return body


STOW_REQUEST = {"multipart/related": OpenApiTypes.BINARY}
STOW_RESPONSES = {(200, DICOM_JSON): OpenApiTypes.OBJECT, (202, DICOM_JSON): OpenApiTypes.OBJECT}


class StowView(APIView):
    """Store instances (STOW-RS). Each becomes a study of the caller's clinic, as an upload does."""

    parser_classes: list[Any] = []  # the body is read here, as multipart/related
    renderer_classes = [DicomJSONRenderer]
    content_negotiation_class = FirstRenderer
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "submissions"

    @extend_schema(operation_id="dicomweb_store", request=STOW_REQUEST, responses=STOW_RESPONSES)
    def post(self, request: Request, study_uid: str = "") -> HttpResponse:
        if study_uid and (len(study_uid) > 64 or not UID.match(study_uid)):
            return _error(400, "The Study Instance UID in the URL is not a UID.")
        try:
            parts = parse(request.META.get("CONTENT_TYPE", ""), _read_body(request))
        except BadBody as exc:
            return _error(exc.status, str(exc))
        outcomes = store(cast(User, request.user), parts, study_uid, Origin.of(request))
        answer = _json(response_dataset(request, outcomes))
        return HttpResponse(answer, status=_status(outcomes), content_type=DICOM_JSON)


class StowStudyView(StowView):
    """STOW-RS into one study (/dicomweb/studies/{StudyInstanceUID}): its own operation in the schema."""

    @extend_schema(operation_id="dicomweb_store_in_study", request=STOW_REQUEST, responses=STOW_RESPONSES)
    def post(self, request: Request, study_uid: str = "") -> HttpResponse:
        return super().post(request, study_uid)
