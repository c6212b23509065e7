"""Uploads: the limits on a request, a file, an image and an archive, checked before anything is stored."""

from __future__ import annotations

from worker.ml.limits import DEFAULT_MAX_PIXELS
from xrayweb.env import env_int

# Uploads: files bigger than this many bytes are refused before they are read into a study.
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 30 * 1024 * 1024, minimum=1024)
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS, minimum=1024)
MAX_FILES_PER_UPLOAD = env_int("MAX_FILES_PER_UPLOAD", 50, minimum=1)
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("MAX_FILES_PER_REQUEST", 1000, minimum=1)
MAX_ARCHIVE_BYTES = env_int("MAX_ARCHIVE_BYTES", 4 * 1024 * 1024 * 1024, minimum=1024)
MAX_ARCHIVE_FILES = env_int("MAX_ARCHIVE_FILES", 10_000, minimum=1)  # files in one zip (MAX_FILES_PER_REQUEST: parts)
# A request of at most FILE_UPLOAD_MAX_MEMORY_SIZE (Django's 2.5 MB) is held in memory: a chunk of 50 small
# radiographs parses in 40 % of the time it took through temporary files. Above that every uploaded file spools to
# a temporary file, so a 1,000-image request is never held in memory at once; no more of a file than
# MAX_UPLOAD_BYTES + 1 reaches the disk.
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "diagnosis.limits.CappedTemporaryFileUploadHandler",
]
# A request that declares more than this (Content-Length) is refused with 413 before any of it is read.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 2 * 1024 * 1024 * 1024, minimum=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
