"""Files no row refers to, and their removal.

A study's files are written before its rows are recorded, and a result's before its row: a process killed in
between (the web server in the middle of a request, a worker in the middle of a batch) leaves files that nothing
refers to. A red-team pass that killed workers found 212 such files. They are looked for folder by folder (each
of `studies/` and `derived/` holds 256), and only files older than a day are removed, so that files whose rows
are about to be recorded are never taken. The sweeper's beat runs it daily; `manage.py prune_orphan_files` at will.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

from django.core.files.storage import default_storage
from django.utils import timezone

from diagnosis.models import Result, Study

logger = logging.getLogger(__name__)
FOLDERS = ("studies", "derived")
MIN_AGE = timedelta(days=1)
_FILE_FIELDS = ((Study, ("image", "preview", "thumbnail", "model_copy")), (Result, ("heatmap", "overlay")))


def prune_orphan_files(min_age: timedelta = MIN_AGE, dry_run: bool = False) -> list[str]:
    """Remove (dry_run: only list) the stored files older than min_age that no study or result refers to."""
    cutoff = timezone.now() - min_age
    found = []
    for folder in _folders():
        referenced = _referenced(folder + "/")
        for name in default_storage.listdir(folder)[1]:
            path = f"{folder}/{name}"
            if path in referenced or default_storage.get_modified_time(path) > cutoff:
                continue
            if not dry_run:
                default_storage.delete(path)
            found.append(path)
    if found:
        logger.info("housekeeping: %s %d files no row refers to", "found" if dry_run else "removed", len(found))
    return found


def _folders() -> Iterator[str]:
    for top in FOLDERS:
        try:  # not exists(): on object storage a folder is only a prefix, and exists() says no
            subs = default_storage.listdir(top)[0]
        except FileNotFoundError:  # a local store with nothing in it yet
            continue
        yield from (f"{top}/{sub}" for sub in sorted(subs))


def _referenced(prefix: str) -> set[str]:
    names: set[str] = set()
    for model, file_fields in _FILE_FIELDS:
        for name in file_fields:
            rows = model.objects.filter(**{f"{name}__startswith": prefix})
            names.update(str(v) for v in rows.values_list(name, flat=True))
    return names
