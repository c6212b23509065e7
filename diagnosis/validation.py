"""The upload gate: every file is checked here before it becomes a study.

A bad file never reaches the queue: empty, too large, not a JPEG/PNG/DICOM, truncated or corrupt, or a
decompression bomb (refused from its header, before any pixel is decoded). A DICOM file must be a single-frame
chest radiograph (worker.ml.dicom); what is stored of it is a de-identified copy unless DICOM_KEEP_IDENTIFIERS.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.utils.translation import gettext as _

from diagnosis.refusal_words import reason_text
from diagnosis.sizes import megabytes, size_over
from worker.ml import deidentify, dicom, overlay, working
from worker.ml.preprocessing import DecodedImage, ImageRejected, decode, display_image
from worker.ml.working import WorkingCopy

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "DICOM": "application/dicom"}
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "DICOM": ".dcm"}
THUMBNAIL_SIDE = 192


class UploadError(ValueError):
    """A file that cannot become a study. str() is the message the user sees."""

    def __init__(self, file_name: str, message: str) -> None:
        super().__init__(f"{file_name}: {message}")
        self.file_name = file_name
        self.message = message


@dataclass(frozen=True)
class ValidatedUpload:
    name: str
    data: bytes
    content_type: str
    extension: str
    sha256: str
    width: int
    height: int
    working_copy: WorkingCopy  # what the worker judges from (its display_jpeg is the study's preview)
    thumbnail_jpeg: bytes
    dicom: dicom.DicomHeader | None = None  # the original header's UIDs and details (data: the stored copy)


def clean_name(name: str) -> str:
    """Keep only the base name, whatever path the client sent, without control characters."""
    base = "".join(ch for ch in name.replace("\\", "/").rsplit("/", 1)[-1] if ch.isprintable()).strip()
    return base[:200] or "unnamed"


def validate_upload(name: str, size: int | None, stream: IO[bytes]) -> ValidatedUpload:
    """Check one uploaded file. Reads at most MAX_UPLOAD_BYTES + 1 bytes. Raises UploadError."""
    name = clean_name(name)
    limit = settings.MAX_UPLOAD_BYTES
    if size is not None and size > limit:
        raise UploadError(name, _("the file is %(size)s.") % {"size": size_over(size, limit)})
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise UploadError(name, _("the file is larger than the %(limit)s limit.") % {"limit": megabytes(limit)})
    header = None
    try:
        if dicom.is_dicom(data):
            image = dicom.read(data, settings.MAX_IMAGE_PIXELS)
            decoded, header = image.decoded, image.header
            if not settings.DICOM_KEEP_IDENTIFIERS:
                data = deidentify.deidentify(image.dataset, uid_salt())
        else:
            decoded = decode(data, max_pixels=settings.MAX_IMAGE_PIXELS)
    except ImageRejected as exc:
        raise UploadError(name, reason_text(str(exc))) from exc
    return _validated(name, data, decoded, header)


def uid_salt() -> str:
    """What new UIDs of de-identified copies are derived from: secret, so they cannot be traced back."""
    return hashlib.sha256(f"dicom-uid:{settings.SECRET_KEY}".encode()).hexdigest()


def _validated(name: str, data: bytes, decoded: DecodedImage, header: dicom.DicomHeader | None) -> ValidatedUpload:
    return ValidatedUpload(
        name=name,
        data=data,
        content_type=CONTENT_TYPES[decoded.format],
        extension=EXTENSIONS[decoded.format],
        dicom=header,
        sha256=hashlib.sha256(data).hexdigest(),
        width=decoded.width,
        height=decoded.height,
        working_copy=working.make(decoded),
        thumbnail_jpeg=overlay.encode_jpeg(display_image(decoded.gray, THUMBNAIL_SIDE)),
    )
