"""Idempotency-Key for POSTs: an HTTP concern, so it lives in the API layer around the view it protects.

The first POST with a key reserves it, runs, and stores its answer with the request's fingerprint (method,
path, and a hash of the body: every field and every file's content); a retry of the same request gets that
answer, a retry that arrives while the first is still running gets 409, and a reuse of the key for a different
request gets 422 (as the IETF Idempotency-Key draft says) instead of a replay that would drop its files.
An answer that is not kept (an exception, a 5xx) releases the key, so the retry runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from diagnosis.models import IdempotentResponse

HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 200
PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        f"Retrying a POST with the same key (at most {KEY_MAX_LENGTH} characters) returns the first answer instead "
        "of creating duplicates; reusing it for a different request is refused with 422."
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
            if record.status_code == 0:
                return Response(IN_PROGRESS, status=409)
            return Response(record.body, status=record.status_code)
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
