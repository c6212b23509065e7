"""A multipart/related body of application/dicom (STOW-RS), parsed as it is read: CHUNK bytes at a time, each part
streamed to a temporary file (base64 or quoted-printable parts decoded there), so a large body keeps memory flat."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import logging
import quopri
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from typing import IO

from django.conf import settings
from django.utils.translation import gettext as _
from gunicorn.http.errors import ParseException

from worker.ml.dicom import PREAMBLE_END

logger = logging.getLogger(__name__)


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
        raise BadBody(415, _('Send multipart/related; type="application/dicom".'))
    root_type = str(head.get_param("type") or "").lower()
    if root_type != "application/dicom":
        raise BadBody(
            415, _('The multipart/related type must be "application/dicom", not "%(type)s".') % {"type": root_type}
        )
    boundary = head.get_boundary()
    if not boundary:
        raise BadBody(400, _("The Content-Type has no boundary."))
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
            raise BadBody(400, _("The body could not be read: its chunks are malformed, or it was cut short.")) from exc
        self.total += len(chunk)
        if self.total > self.limit:
            raise BadBody(413, too_large(self.limit))
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
            raise BadBody(400, _("The multipart body is malformed (no boundary in the body)."))
        while True:
            after = body.peek(2)
            if after == b"--":
                break  # the close delimiter; an epilogue after it is ignored
            if not body.until(b"\r\n", None, at_most=1024):  # the rest of the boundary line (transport padding)
                raise BadBody(400, _("The multipart body is malformed (a boundary line does not end)."))
            parts.append(_part(body, len(parts) + 1, delimiter))
    except BaseException:
        close_parts(parts)
        raise
    if not parts:
        raise BadBody(400, _("The multipart body has no parts."))
    return parts


def _part(body: _Body, index: int, delimiter: bytes) -> Part:
    raw = io.BytesIO()
    if body.peek(2) == b"\r\n":  # no headers at all
        del body.buffer[:2]
    elif not body.until(b"\r\n\r\n", raw, at_most=MAX_PART_HEADERS):
        raise BadBody(
            400, _("The multipart body is malformed (part %(index)s's headers do not end).") % {"index": index}
        )
    headers = email.parser.BytesHeaderParser(policy=email.policy.HTTP).parsebytes(raw.getvalue() + b"\r\n\r\n")
    declared = headers.get_content_type() if headers["Content-Type"] else "application/dicom"
    if declared.startswith("multipart/"):
        raise BadBody(400, _("Part %(index)s is itself multipart.") % {"index": index})
    file: IO[bytes] = tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR)  # noqa: SIM115 (close_parts)
    try:
        if not body.until(delimiter, file):
            raise BadBody(
                400,
                _("The multipart body is malformed (part %(index)s does not end with a boundary).") % {"index": index},
            )
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
        what = _("a JPEG image")
    elif head.startswith(b"\x89PNG"):
        what = _("a PNG image")
    elif text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        what = _("an HTML page")
    elif head.startswith(b"%PDF"):
        what = _("a PDF document")
    else:
        what = _("something else")
    return _(
        "the part is not DICOM (it is %(what)s): an application/dicom part must be a DICOM Part 10 file "
        "(a 128-byte preamble, then DICM)."
    ) % {"what": what}


def too_large(limit: float) -> str:
    return _("The body is larger than %(megabytes)s MB; send fewer instances at a time.") % {
        "megabytes": f"{limit / 2**20:.0f}"
    }
