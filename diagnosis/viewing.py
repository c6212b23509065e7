"""Audited reads: opening a study or one of its files (one enum of file kinds) is recorded in the audit trail.

Both are scoped to the user's clinic through the selectors: another clinic's study is a 404."""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from pathlib import PurePosixPath

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404

from diagnosis import audit, selectors
from diagnosis.access import AnyUser
from diagnosis.audit import Origin
from diagnosis.models import RESULT_FILE_FIELDS, AuditAction, Study
from diagnosis.validation import CONTENT_TYPES, EXTENSIONS

DERIVED_TYPES = {".png": "image/png", ".jpg": "image/jpeg"}


class FileKind(StrEnum):
    IMAGE = "image"  # the uploaded original
    PREVIEW = "preview"  # display JPEG of the original
    THUMBNAIL = "thumbnail"
    HEATMAP = "heatmap"  # the result's Grad-CAM heatmap (PNG)
    OVERLAY = "overlay"  # the result's overlay (JPEG; PNG for results stored before the batched worker)

    @property
    def of_result(self) -> bool:
        return self.value in RESULT_FILE_FIELDS

    def content_type(self, study: Study, stored: FieldFile) -> str:
        if self is FileKind.IMAGE:
            return study.content_type
        return DERIVED_TYPES.get(self.suffix(stored), "application/octet-stream")

    def file_name(self, study: Study, stored: FieldFile) -> str:
        if self is FileKind.IMAGE:
            return original_download_name(study)
        return f"{self.value}{self.suffix(stored)}"

    @staticmethod
    def suffix(stored: FieldFile) -> str:
        """The stored file's own extension: derived files are written by the worker, whose formats have changed."""
        return PurePosixPath(stored.name or "").suffix.lower()

    def field(self, study: Study) -> FieldFile | None:
        if self.of_result:
            result = getattr(study, "result", None)
            return getattr(result, self.value) if result else None
        return getattr(study, self.value)


# The extension of each type the upload gate accepts, chosen by the service from what the file was found to be.
TYPE_EXTENSIONS = {CONTENT_TYPES[kind]: extension for kind, extension in EXTENSIONS.items()}


def original_download_name(study: Study) -> str:
    """The name the original downloads under: the uploaded name's stem with the extension of the type the file was
    found to be, never the one it was uploaded with. A JPEG with HTML appended, uploaded as poly.html, downloads as
    poly.jpg: saved with its own name, a browser would open it as a page."""
    stem, dot, _ = study.original_name.rpartition(".")
    stem = (stem if dot else study.original_name).strip() or "original"
    return stem + TYPE_EXTENSIONS.get(study.content_type, ".bin")


# The API serves the original and the result's images; the pages also show the derived previews.
API_KINDS = frozenset({FileKind.IMAGE, FileKind.HEATMAP, FileKind.OVERLAY})


def view_study(user: AnyUser, study_id: object, origin: Origin, via: str) -> Study:
    """A study of the user's clinic (404 otherwise), its viewing recorded in the audit trail."""
    study = selectors.get_study(user, str(study_id))
    audit.record(user, AuditAction.VIEW_STUDY, study, {"via": via}, origin=origin)
    return study


def serve_file(
    user: AnyUser, study_id: object, kind: str, origin: Origin, allowed: Collection[FileKind] = tuple(FileKind)
) -> FileResponse:
    """A file of a study of the user's clinic, its viewing audited; 404 for another clinic or an unknown kind."""
    try:
        file_kind = FileKind(kind)
    except ValueError:
        raise Http404("Unknown file.") from None
    if file_kind not in allowed:
        raise Http404("Unknown file.")
    study = selectors.get_study(user, str(study_id))
    if not audit.part_of_opening(user, study, file_kind.value, origin):  # the page's own images are its opening
        audit.record(user, AuditAction.VIEW_FILE, study, {"file": file_kind.value}, origin=origin)
    field = file_kind.field(study)
    if not field:
        raise Http404("This file does not exist (yet).")
    try:
        opened = field.open("rb")
    except FileNotFoundError:  # the row names a file storage no longer has (a restore, a sweep): not a server error
        raise Http404("This file is missing from storage.") from None
    # FileResponse encodes the name (the user's stem) safely (quotes, newlines, non-ASCII) in Content-Disposition.
    response = FileResponse(
        opened, content_type=file_kind.content_type(study, field), filename=file_kind.file_name(study, field)
    )
    response["Cache-Control"] = "private, no-store"  # shared clinic workstations: nothing stays after logout
    return response
