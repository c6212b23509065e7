"""Zip archives submitted through the API: entries are streamed one at a time and checked one by one.

Refused per entry (the rest of the archive still goes through): path tricks (absolute paths, '..',
drive letters), nested archives, encrypted entries, entries over the per-file limit, and everything
after the archive's total uncompressed size passes its limit (a zip bomb). Refused entries are reported
through the `refuse` callback, in archive order; only acceptable entries are yielded.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import IO, NamedTuple

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from diagnosis.sizes import megabytes, size_over

ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"})


class Entry(NamedTuple):
    name: str
    size: int
    stream: IO[bytes]


Refuse = Callable[[str, str], None]  # (entry name, reason)


class BadArchive(ValueError):
    """The upload is not a readable zip archive at all."""


# What a broken entry raises while it is opened or read: a bad CRC-32, a declared size that does not match its
# data, a local header that contradicts the central directory, an unsupported compression method, a truncated or
# corrupt deflate stream. Each is one refused entry, like any other bad file.
ENTRY_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    NotImplementedError,
    zlib.error,
    EOFError,
    OSError,
    RuntimeError,
    ValueError,
)
CORRUPT_ENTRY = gettext_noop("the archive entry is corrupt or uses an unsupported format (%(error)s).")
ENTRIES_PER_FILE = 4  # an archive's entries per file at most, before its directory is read: folders, __MACOSX


def entries(
    fileobj: IO[bytes], max_entry_bytes: int, max_total_bytes: int, refuse: Refuse, max_files: int, *, skip: str = ""
) -> Iterator[Entry]:
    """The archive's acceptable entries; each refused one goes to refuse(name, reason). Raises BadArchive, also for
    an archive of more than max_files files (before any is read). An archive whose end record declares more than
    ENTRIES_PER_FILE times that many entries (folders and __MACOSX included) is refused before its directory is
    parsed: a 2 GB request of empty entries would hold millions of them, each an object in memory. An entry at the
    root named `skip` (the acceptance set's labels.csv, read apart) is passed over."""
    check_declared(fileobj, max_files)
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadArchive(_("not a valid zip archive.")) from exc
    total = 0
    with archive:
        files = [
            i
            for i in archive.infolist()
            if not i.is_dir() and not i.filename.startswith("__MACOSX/") and not (skip and i.filename == skip)
        ]
        if len(files) > max_files:
            raise BadArchive(
                _("the archive holds %(files)s files; the limit is %(limit)s: split it.")
                % {"files": _count(len(files)), "limit": _count(max_files)}
            )
        for info in files:
            problem = _problem(info, max_entry_bytes)
            if problem is None and total + info.file_size > max_total_bytes:
                problem = _("the archive's uncompressed size passes the %(limit)s limit.") % {
                    "limit": megabytes(max_total_bytes)
                }
            if problem:
                refuse(info.filename, problem)
                continue
            try:
                stream = archive.open(info)
            except ENTRY_ERRORS as exc:
                refuse(info.filename, corrupt_entry(exc))
                continue
            total += info.file_size
            yield Entry(info.filename, info.file_size, stream)


def check_declared(fileobj: IO[bytes], max_files: int) -> None:
    """Raises BadArchive when the archive's end record declares more than ENTRIES_PER_FILE x max_files entries:
    to be called before anything opens it with ZipFile, which parses the whole directory."""
    declared = _declared_entries(fileobj)
    if declared is not None and declared > ENTRIES_PER_FILE * max_files:
        raise BadArchive(
            _("the archive holds %(entries)s entries; the limit is %(limit)s files: split it.")
            % {"entries": _count(declared), "limit": _count(max_files)}
        )


def _problem(info: zipfile.ZipInfo, max_entry_bytes: int) -> str | None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        return _("unsafe path in the archive; entry refused.")
    if path.suffix.lower() in ARCHIVE_SUFFIXES:
        return _("nested archives are not accepted.")
    if info.flag_bits & 0x1:
        return _("encrypted entries are not accepted.")
    if info.file_size > max_entry_bytes:
        return _("the entry is %(size)s (uncompressed).") % {"size": size_over(info.file_size, max_entry_bytes)}
    return None


def corrupt_entry(exc: BaseException) -> str:
    """Why an entry that fails while it is read is refused."""
    return _(CORRUPT_ENTRY) % {"error": exc}


def _count(n: int) -> str:
    return number_format(n, force_grouping=True)


def _declared_entries(fileobj: IO[bytes]) -> int | None:
    """How many entries the archive's end-of-central-directory record (or its ZIP64 one) declares, read from its
    last bytes alone; None when there is no such record (ZipFile then says it is not a zip)."""
    try:
        end = zipfile._EndRecData(fileobj)  # type: ignore[attr-defined]  # the standard library's own reader
    except (OSError, struct.error):
        return None
    finally:
        fileobj.seek(0)
    return int(end[zipfile._ECD_ENTRIES_TOTAL]) if end else None  # type: ignore[attr-defined]
