"""Idempotency-Key for POSTs: an HTTP concern, so it lives in the API layer around the view it protects.

The first POST with a key reserves it, runs, and stores its answer; retries get that answer, and a retry that
arrives while the first is still running gets 409 instead of a duplicate.
"""

from __future__ import annotations

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
    description="Retrying a POST with the same key returns the first answer instead of creating duplicates.",
)
IN_PROGRESS = {"detail": "A request with this Idempotency-Key is still being processed; retry shortly."}

Method = TypeVar("Method", bound=Callable[..., Response])


def idempotent(method: Method) -> Method:
    """Wrap a view method (self, request, ...) of an authenticated endpoint; without the header it just runs."""

    @wraps(method)
    def wrapped(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER, "").strip()[:KEY_MAX_LENGTH]
        if not key or not request.user.is_authenticated:
            return method(view, request, *args, **kwargs)
        owner = cast(User, request.user)
        try:
            with transaction.atomic():
                record = IdempotentResponse.objects.create(owner=owner, key=key, status_code=0, body={})
        except IntegrityError:
            record = IdempotentResponse.objects.get(owner=owner, key=key)
            if record.status_code == 0:
                return Response(IN_PROGRESS, status=409)
            return Response(record.body, status=record.status_code)
        try:
            response = method(view, request, *args, **kwargs)
        except BaseException:
            record.delete()
            raise
        record.status_code, record.body = response.status_code, response.data
        record.save(update_fields=["status_code", "body"])
        return response

    return wrapped  # type: ignore[return-value]
