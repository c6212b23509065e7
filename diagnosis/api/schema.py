"""The API's error answers in the OpenAPI schema: each endpoint lists every status it really gives, and why."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR = inline_serializer("Error", {"detail": serializers.CharField()})
_WHY = {
    400: "Invalid input: the body names each field in error (or `detail` says why).",
    401: "No token, or an invalid one.",
    403: "A user who is not a member of a clinic, or lacks the role this needs.",
    404: "No such study, batch or file in your clinic, or no such page of the list.",
    409: "The request conflicts with the current state (`detail` says how).",
    413: "The request is larger than MAX_REQUEST_BYTES (refused before it is read).",
    415: "The body is not multipart/form-data.",
    422: "The Idempotency-Key was used before for a different request.",
    429: "Too many requests: retry after the Retry-After header's seconds.",
}
READ = (401, 403, 404, 429)  # every read of the caller's clinic's data


def errors(*codes: int, **why: str) -> dict[int, OpenApiResponse]:
    """The error responses of these status codes; why: a description per code for this endpoint ("e409": ...)."""
    return {
        code: OpenApiResponse(
            OpenApiTypes.OBJECT if code == 400 else ERROR, description=why.get(f"e{code}", _WHY[code])
        )
        for code in codes
    }
