"""Files no row refers to (a process killed between writing files and recording rows) are removed once a day old."""

from __future__ import annotations

import os
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from diagnosis import housekeeping, intake
from diagnosis.models import Result
from tests import factories
from tests.factories import upload_file

pytestmark = pytest.mark.django_db
DAY = 24 * 3600


def _file(root: Path, name: str, age_seconds: float) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"left behind")
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def test_old_files_no_row_refers_to_are_removed_and_nothing_else(alice, settings) -> None:
    root = Path(settings.MEDIA_ROOT)
    study = intake.submit_files(alice, [upload_file()]).studies[0]
    judged = factories.judged_study(alice)
    result = Result.objects.get(study=judged)
    kept = [Path(f.path) for f in (study.image, study.preview, study.thumbnail, study.model_copy)]
    kept += [Path(f.path) for f in (result.heatmap, result.overlay)]
    for path in kept:
        os.utime(path, (time.time() - 2 * DAY,) * 2)  # old, but referred to
    study_folder = Path(str(study.image.name)).parent.name
    orphans = [
        _file(root, f"derived/{study_folder}/{study.pk}-overlay-x1.jpg", 2 * DAY),  # a worker killed before its row
        _file(root, f"studies/ff/{'f' * 8}-original.png", 3 * DAY),  # a web server killed before its rows
    ]
    young = _file(root, f"derived/{study_folder}/{study.pk}-heatmap-x2.png", 3600)  # its row may be on its way
    listed = housekeeping.prune_orphan_files(dry_run=True)
    assert sorted(listed) == sorted(str(p.relative_to(root)) for p in orphans)
    assert all(p.exists() for p in orphans)
    out = StringIO()
    call_command("prune_orphan_files", stdout=out)
    assert "removed 2 files" in out.getvalue()
    assert not any(p.exists() for p in orphans)
    assert young.exists() and all(p.exists() for p in kept)
    assert housekeeping.prune_orphan_files() == []


def test_an_empty_store_has_nothing_to_prune(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    assert housekeeping.prune_orphan_files() == []
