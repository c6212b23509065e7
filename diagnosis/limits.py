"""Request size limits enforced before the body is read: by Content-Length for the whole request, and per file
while it is received (the rest of an oversized file is never written to disk)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import translation
from django.utils.translation import gettext as _

from diagnosis.sizes import size_over

CHUNKED_ONLY_FOR = ("/dicomweb/",)  # the paths whose views read a chunked body themselves (STOW-RS)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def is_chunked(meta: dict[str, Any]) -> bool:
    """A body sent with Transfer-Encoding: chunked, which the WSGI server decoded and ends (wsgi.input_terminated):
    Django itself reads it as empty, having no Content-Length."""
    chunked = "chunked" in str(meta.get("HTTP_TRANSFER_ENCODING", "")).lower()
    return chunked and not meta.get("CONTENT_LENGTH") and bool(meta.get("wsgi.input_terminated"))


class RequestSizeLimitMiddleware:
    """413 for a request whose declared Content-Length passes MAX_REQUEST_BYTES, before any of it is read. 411 for
    a chunked body (no Content-Length) where only Django would read it, and read it as empty: the client is told
    to send its length, instead of an upload that seems to hold nothing. STOW-RS reads chunked bodies itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAX_REQUEST_BYTES:
            return _refuse(
                request,
                413,
                lambda: _("The request is %(size)s.") % {"size": size_over(length, settings.MAX_REQUEST_BYTES)},
            )
        if (
            request.method in BODY_METHODS
            and is_chunked(request.META)
            and not request.path_info.startswith(CHUNKED_ONLY_FOR)
        ):
            return _refuse(
                request, 411, lambda: _("Send the request with a Content-Length; a chunked body cannot be read here.")
            )
        return self.get_response(request)


def _refuse(request: HttpRequest, status: int, say: Callable[[], str]) -> HttpResponse:
    """say() is the reason, in the browser's language (Accept-Language): this runs before the locale middleware."""
    with translation.override(translation.get_language_from_request(request)):
        reason = say()
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": reason}, status=status)
    return HttpResponse(reason, status=status, content_type="text/plain; charset=utf-8")


ARCHIVE_FIELD = "archive"  # the API's zip: bounded by MAX_REQUEST_BYTES, its entries by the archive checks


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Spools each image to a temporary file, but keeps at most MAX_UPLOAD_BYTES + 1 bytes of it: enough for the
    upload gate to see it is too large (the file's size stays the size received), never the whole file."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.kept = 0
        self.cap = settings.MAX_REQUEST_BYTES if self.field_name == ARCHIVE_FIELD else settings.MAX_UPLOAD_BYTES + 1

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        room = self.cap - self.kept
        if room > 0:
            chunk = raw_data[:room]
            self.file.write(chunk)
            self.kept += len(chunk)
