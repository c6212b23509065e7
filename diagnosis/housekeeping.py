"""Files no row refers to, and their removal.

A study's files are written before its rows are recorded, and a result's before its row: a process killed in
between (the web server in the middle of a request, a worker in the middle of a batch) leaves files that nothing
refers to. A red-team pass that killed workers found 212 such files. Every file under `studies/` and `derived/`
is named after its study (`<folder>/<first two hex digits>/<study id>-<name>`, or `<folder>/<study id>/<name>`
in the layout before), so each folder's files are checked against the rows of their own studies, looked up by
primary key. Only files older than a day are removed, so that files whose rows are about to be recorded are never
taken, and a file that names no study is left alone. If more than a small share of the files would go (the
database is not this store's: a new or restored one, a bucket shared by two installations), nothing is removed
and the run says why. The sweeper's beat runs it daily at 03:17; `manage.py prune_orphan_files` at will.
"""

from __future__ import annotations

import logging
import posixpath
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.files.storage import default_storage
from django.utils import timezone

from diagnosis.models import RESULT_FILE_FIELDS, STUDY_FILE_FIELDS, Result, Study

logger = logging.getLogger(__name__)
FOLDERS = ("studies", "derived")
MIN_AGE = timedelta(days=1)
# More orphans than this share of the files (and more than MIN_REFUSED of them) is not a killed process's debris:
# the database does not belong to this store. Nothing is removed then.
MAX_SHARE = 0.05
MIN_REFUSED = 100


@dataclass
class Pruning:
    orphans: list[str] = field(default_factory=list)
    files: int = 0
    removed: bool = False
    refused: str = ""


def prune_orphan_files(min_age: timedelta = MIN_AGE, dry_run: bool = False) -> Pruning:
    """Find the stored files older than min_age that no study or result refers to, and remove them (dry_run: only
    list them), unless they are too many to be debris (Pruning.refused says so)."""
    cutoff = timezone.now() - min_age
    run = Pruning()
    for folder in _folders():
        names = default_storage.listdir(folder)[1]
        run.files += len(names)
        owners = {name: _study_of(folder, name) for name in names}
        referenced = _referenced({i for i in owners.values() if i is not None})
        for name, owner in owners.items():
            path = f"{folder}/{name}"
            if owner is None or path in referenced or not _older(path, cutoff):
                continue
            run.orphans.append(path)
    if len(run.orphans) > max(MIN_REFUSED, MAX_SHARE * run.files):
        run.refused = (
            f"{len(run.orphans)} of {run.files} files would go, more than {MAX_SHARE:.0%}: is this the store's own "
            "database? Nothing was removed."
        )
        logger.error("housekeeping: %s", run.refused)
        return run
    if not dry_run:
        for path in run.orphans:
            _delete(path)
        run.removed = True
    if run.orphans:
        logger.info(
            "housekeeping: %s %d files no row refers to", "removed" if run.removed else "found", len(run.orphans)
        )
    return run


def _folders() -> Iterator[str]:
    for top in FOLDERS:
        try:  # not exists(): on object storage a folder is only a prefix, and exists() says no
            subs = default_storage.listdir(top)[0]
        except FileNotFoundError:  # a local store with nothing in it yet
            continue
        yield from (f"{top}/{sub}" for sub in sorted(subs))


def _study_of(folder: str, name: str) -> uuid.UUID | None:
    """The study a stored file belongs to, from its name (or its folder's, in the layout before); None if neither
    names one."""
    for candidate in (name[:36], posixpath.basename(folder)):
        try:
            return uuid.UUID(candidate)
        except ValueError:
            continue
    return None


def _referenced(ids: set[uuid.UUID]) -> set[str]:
    """The names the rows of these studies and their results hold (by primary key: no scan), normalised."""
    held: set[str] = set()
    for chunk in _chunks(sorted(ids), 500):
        for row in Study.objects.filter(pk__in=chunk).order_by().values_list(*STUDY_FILE_FIELDS):
            held.update(str(v) for v in row if v)
        for row in Result.objects.filter(study_id__in=chunk).order_by().values_list(*RESULT_FILE_FIELDS):
            held.update(str(v) for v in row if v)
    return {posixpath.normpath(n) for n in held}


def _chunks(items: list[uuid.UUID], size: int) -> Iterator[list[uuid.UUID]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _older(path: str, cutoff: datetime) -> bool:
    try:
        return bool(default_storage.get_modified_time(path) < cutoff)
    except Exception:  # gone meanwhile (removed by its own request's clean-up): nothing to do
        return False


def _delete(path: str) -> None:
    try:
        default_storage.delete(path)
    except Exception:  # one file that cannot go does not stop the rest; the next run tries it again
        logger.warning("housekeeping: %s could not be removed", path, exc_info=True)
