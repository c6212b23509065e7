"""Idempotency-Key for POSTs: an HTTP concern, so it lives in the API layer around the view it protects.

The first POST with a key reserves it, runs, and stores its answer with the request's fingerprint (method,
path, and a hash of the body: every field and every file's content); a retry of the same request gets that
answer, a retry that arrives while the first is still running gets 409, and a reuse of the key for a different
request gets 422 (as the IETF Idempotency-Key draft says) instead of a replay that would drop its files.
An answer that is not kept (an exception, a 5xx) releases the key, so the retry runs.

A request cut off with no answer at all (its process killed, the machine gone) cannot release its key. The
request holding a key renews its lease as it works through its files (`renew`, every RENEW_SECONDS); a key whose
lease is LEASE_SECONDS old is taken over by the next retry, which goes on with the batch that request began
(`resumed_batch`): the studies it stored are answered again, not stored a second time. The lease's time is also
the holder's fencing token: a holder writes its answer, renews or releases the key only while the lease is still
the one it set, so a request that only stalled, and lost its key meanwhile, stops (409) instead of storing on.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from diagnosis.models import Batch, IdempotentResponse

HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 200
# A key whose holder has not renewed its lease for this long was cut off: a retry takes the key over. The holder
# renews at most every RENEW_SECONDS, between two files (one file takes a second at most, once the body is in).
LEASE_SECONDS = 120
RENEW_SECONDS = 10
_RECORD = "_idempotency_record"  # the request's attribute holding its key's row
PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        f"Retrying a POST with the same key (at most {KEY_MAX_LENGTH} characters) returns the first answer instead "
        "of creating duplicates; reusing it for a different request is refused with 422. While the first request "
        f"runs a retry gets 409; if it was cut off with no answer, a retry {LEASE_SECONDS} s after it last showed "
        "progress takes over and completes the same batch."
    ),
)
IN_PROGRESS = {"detail": _("A request with this Idempotency-Key is still being processed; retry shortly.")}
TAKEN_OVER = {
    "detail": _("This request stalled and a retry with its Idempotency-Key took over its batch; that retry answers.")
}
MISMATCH = {"detail": _("This Idempotency-Key was already used for a different request; use a new key.")}
TOO_LONG = {"detail": format_lazy(_("The Idempotency-Key is longer than {length} characters."), length=KEY_MAX_LENGTH)}

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
        held = Held(record)
        setattr(request, _RECORD, held)
        try:
            response = method(view, request, *args, **kwargs)
        except KeyTakenOver:
            return Response(TAKEN_OVER, status=409)
        except BaseException:
            held.release()
            raise
        if response.status_code >= 500:
            held.release()
            return response
        if not held.answer(response.status_code, response.data):
            return Response(TAKEN_OVER, status=409)
        return response

    return wrapped  # type: ignore[return-value]


class KeyTakenOver(Exception):
    """The request's lease ran out while it stalled, and a retry holds its key now: it must store nothing more."""


class Held:
    """A key this request holds: every write is fenced by the lease time it last set."""

    def __init__(self, record: IdempotentResponse) -> None:
        self.record = record
        self.renewed = time.monotonic()

    def _mine(self) -> QuerySet[IdempotentResponse]:
        return _unanswered(self.record)

    def renew(self) -> None:
        """Extend the lease (at most every RENEW_SECONDS). Raises KeyTakenOver if a retry holds the key now."""
        if time.monotonic() - self.renewed < RENEW_SECONDS:
            return
        now = timezone.now()
        if not self._mine().update(lease=now):
            raise KeyTakenOver
        self.record.lease, self.renewed = now, time.monotonic()

    def answer(self, status: int, body: Any) -> bool:
        """Keep the answer for retries; False if a retry holds the key now (its answer will be kept instead)."""
        return bool(self._mine().update(status_code=status, body=body))

    def release(self) -> None:
        """No answer to keep (an exception, a 5xx): the key goes, so a retry runs."""
        self._mine().delete()

    def bind(self, batch: Batch) -> None:
        if self.record.batch_id != batch.pk and self._mine().update(batch=batch):
            self.record.batch = batch


def _take_over(record: IdempotentResponse) -> bool:
    """True when the request holding the key stopped renewing its lease LEASE_SECONDS ago and this one now holds
    it: one retry only, however many arrive at once."""
    now = timezone.now()
    if now - record.lease < timedelta(seconds=LEASE_SECONDS):
        return False
    taken = _unanswered(record).update(lease=now)
    record.lease = now
    return taken == 1


def _unanswered(record: IdempotentResponse) -> QuerySet[IdempotentResponse]:
    """The key's row while it has no answer and its lease is still the one `record` holds (the fence)."""
    return IdempotentResponse.objects.filter(pk=record.pk, status_code=0, lease=record.lease)


def _held(request: Request) -> Held | None:
    held: Held | None = getattr(request, _RECORD, None)
    return held


def resumed_batch(request: Request) -> Batch | None:
    """The batch a cut-off request with this request's key began, for this one to go on with; None otherwise."""
    held = _held(request)
    return held.record.batch if held is not None else None


def bind(request: Request, batch: Batch) -> None:
    """Note the batch this request fills on its key, before it stores anything: a retry after a cut-off resumes it."""
    held = _held(request)
    if held is not None:
        held.bind(batch)


def renew(request: Request) -> None:
    """Called between the request's files: keeps its key's lease. Raises KeyTakenOver when it was lost."""
    held = _held(request)
    if held is not None:
        held.renew()
