"""Chunked request bodies for Django under WSGI.

Django reads a request body up to its Content-Length and takes none without one (Django ticket #35838, fixed
after the 5.2 series this service runs on). A client that sends `Transfer-Encoding: chunked` has no
Content-Length, so its body arrived empty: Orthanc's DICOMweb client sends STOW-RS that way, and every instance it
sent was refused with "the multipart body is malformed". gunicorn decodes the chunks itself and says so
(`wsgi.input_terminated`); this wrapper then reads the decoded body into a spooled temporary file (in memory up
to FILE_UPLOAD_MAX_MEMORY_SIZE, on disk beyond it) and hands it on with its length, so every check that reads
Content-Length applies. It reads at most MAX_REQUEST_BYTES + 1 bytes: a longer body is refused by
diagnosis.limits.RequestSizeLimitMiddleware with its 413, as a declared one is. A server that does not decode
chunks (Django's own runserver) leaves the request as it was.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from typing import Any

from django.conf import settings

READ_SIZE = 64 * 1024


class ChunkedBodies:
    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
        if chunked and environ.get("wsgi.input_terminated") and not environ.get("CONTENT_LENGTH"):
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = _spooled(environ["wsgi.input"])
        return self.app(environ, start_response)


def _spooled(stream: Any) -> tuple[Any, str]:
    """(the body in a temporary file at its start, its length), at most MAX_REQUEST_BYTES + 1 bytes of it. The file
    is unlinked at once: it goes when the request's environ does."""
    spool = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115 (the request reads it)
    room = settings.MAX_REQUEST_BYTES + 1
    while room > 0 and (chunk := stream.read(min(READ_SIZE, room))):
        spool.write(chunk)
        room -= len(chunk)
    length = spool.tell()
    spool.seek(0)
    return spool, str(length)
