"""Idempotency-Key for POSTs: an HTTP concern, so it lives in the API layer around the view it protects.

The first POST with a key reserves it, runs, and stores its answer with the request's fingerprint (method,
path, and a hash of the body: every field and every file's content); a retry of the same request gets that
answer, a retry that arrives while the first is still running gets 409, and a reuse of the key for a different
request gets 422 (as the IETF Idempotency-Key draft says) instead of a replay that would drop its files.
An answer that is not kept (an exception, a 5xx) releases the key, so the retry runs.

A request cut off with no answer at all (its process killed, the machine gone) cannot release its key. A key
whose request has recorded nothing for LEASE_SECONDS is taken over by the next retry, which goes on with the batch
that request began (`resumed_batch`): the studies it stored are answered again, not stored a second time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from diagnosis.models import Batch, IdempotentResponse, Study

HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 200
# A request holding a key that has stored no study for this long was cut off: a retry takes the key over. A
# request records its studies 16 at a time, a few seconds apart at most, once its body is in.
LEASE_SECONDS = 120
_RECORD = "_idempotency_record"  # the request's attribute holding its key's row
PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        f"Retrying a POST with the same key (at most {KEY_MAX_LENGTH} characters) returns the first answer instead "
        "of creating duplicates; reusing it for a different request is refused with 422. While the first request "
        f"runs a retry gets 409; if it was cut off with no answer, a retry {LEASE_SECONDS} s after it last stored a "
        "study takes over and completes the same batch."
    ),
)
IN_PROGRESS = {"detail": "A request with this Idempotency-Key is still being processed; retry shortly."}
MISMATCH = {"detail": "This Idempotency-Key was already used for a different request; use a new key."}
TOO_LONG = {"detail": f"The Idempotency-Key is longer than {KEY_MAX_LENGTH} characters."}

Method = TypeVar("Method", bound=Callable[..., Response])


def fingerprint(request: Request) -> str:
    """sha256 of the method, the path and the body as parsed: fields and files (by name and content, streamed)."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    data: Any = request.data
    for name in sorted(data.keys()):
        values = data.getlist(name) if hasattr(data, "getlist") else [data[name]]
        for value in values:
            digest.update(f"{name}={value!r}\n".encode())
    files = request.FILES
    for name in sorted(files.keys()):
        for upload in files.getlist(name):
            digest.update(f"{name}:{upload.name}:{upload.size}\n".encode())
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
    return digest.hexdigest()


def idempotent(method: Method) -> Method:
    """Wrap a view method (self, request, ...) of an authenticated endpoint; without the header it just runs."""

    @wraps(method)
    def wrapped(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER, "").strip()
        if not key or not request.user.is_authenticated:
            return method(view, request, *args, **kwargs)
        if len(key) > KEY_MAX_LENGTH:
            return Response(TOO_LONG, status=400)
        owner, print_ = cast(User, request.user), fingerprint(request)
        try:
            with transaction.atomic():
                record = IdempotentResponse.objects.create(
                    owner=owner, key=key, fingerprint=print_, status_code=0, body={}
                )
        except IntegrityError:
            record = IdempotentResponse.objects.get(owner=owner, key=key)
            if record.fingerprint != print_:
                return Response(MISMATCH, status=422)
            if record.status_code == 0 and not _take_over(record):
                return Response(IN_PROGRESS, status=409)
            if record.status_code != 0:
                return Response(record.body, status=record.status_code)
        setattr(request, _RECORD, record)
        try:
            response = method(view, request, *args, **kwargs)
        except BaseException:
            record.delete()
            raise
        if response.status_code >= 500:
            record.delete()
            return response
        record.status_code, record.body = response.status_code, response.data
        record.save(update_fields=["status_code", "body"])
        return response

    return wrapped  # type: ignore[return-value]


def _take_over(record: IdempotentResponse) -> bool:
    """True when the request holding the key was cut off (nothing stored for LEASE_SECONDS) and this one now holds
    it: one retry only, however many arrive at once."""
    last = record.created
    if record.batch_id is not None:
        newest = Study.objects.filter(batch_id=record.batch_id).aggregate(newest=Max("created"))["newest"]
        last = max(last, newest or last)
    now = timezone.now()
    if now - last < timedelta(seconds=LEASE_SECONDS):
        return False
    taken = IdempotentResponse.objects.filter(pk=record.pk, status_code=0, created=record.created).update(created=now)
    record.created = now
    return taken == 1


def resumed_batch(request: Request) -> Batch | None:
    """The batch a cut-off request with this request's key began, for this one to go on with; None otherwise."""
    record: IdempotentResponse | None = getattr(request, _RECORD, None)
    return record.batch if record is not None else None


def bind(request: Request, batch: Batch) -> None:
    """Note the batch this request fills on its key, before it stores anything: a retry after a cut-off resumes it."""
    record: IdempotentResponse | None = getattr(request, _RECORD, None)
    if record is not None and record.batch_id != batch.pk:
        record.batch = batch
        record.save(update_fields=["batch"])
