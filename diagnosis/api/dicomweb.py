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

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any, cast

import pydicom
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from pydicom.dataset import Dataset
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from diagnosis import intake, limits
from diagnosis.api.authentication import TokenAuthentication
from diagnosis.api.multipart import BadBody, Part, boundary_of, close_parts, not_dicom, parse, too_large
from diagnosis.api.throttles import ScopedRateThrottle
from diagnosis.audit import Origin
from diagnosis.models import Study
from worker.ml.dicom import is_dicom

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


@dataclass
class Outcome:
    sop_class_uid: str
    sop_uid: str
    study: Study | None = None
    failure: int = 0
    reason: str = ""


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
            outcome.reason = gettext("the instance's Study Instance UID is not %(uid)s.") % {"uid": study_uid}
            continue
        name = f"{sop or f'part-{part.index}'}.dcm"[:200]
        upload = UploadedFile(part.file, name, "application/dicom", part.size)
        try:
            submission = intake.submit_files(owner, [upload], batch=batch, origin=origin, priority=priority)
        except Exception:  # a failure to store is this instance's answer, never a 500
            logger.exception("STOW-RS: could not store part %s", part.index)
            outcome.failure = PROCESSING_FAILURE
            outcome.reason = gettext("the service could not store the instance; try again.")
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
        raise BadBody(413, too_large(limit))
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
            return _error(400, gettext("The Study Instance UID in the URL is not a UID."))
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
