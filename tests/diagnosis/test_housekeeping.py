"""Files no row refers to (a process killed between writing files and recording rows) are removed once a day old."""

from __future__ import annotations

import os
import time
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

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


def _aged(paths: list[Path]) -> None:
    for path in paths:
        os.utime(path, (time.time() - 2 * DAY,) * 2)


def test_old_files_no_row_refers_to_are_removed_and_nothing_else(alice, settings) -> None:
    root = Path(settings.MEDIA_ROOT)
    study = intake.submit_files(alice, [upload_file()]).studies[0]
    result = Result.objects.get(study=factories.judged_study(alice))
    kept = [Path(f.path) for f in (study.image, study.preview, study.thumbnail, study.model_copy)]
    kept += [Path(f.path) for f in (result.heatmap, result.overlay)]
    _aged(kept)  # old, but referred to
    folder = Path(str(study.image.name)).parent.name
    gone = uuid.uuid4()  # a study whose rows were never recorded: its request was killed
    orphans = [
        _file(root, f"derived/{folder}/{study.pk}-overlay-x1.jpg", 2 * DAY),  # a worker killed before its row
        _file(root, f"studies/{str(gone)[:2]}/{gone}-original.png", 3 * DAY),  # a web server killed before its rows
        _file(root, f"derived/{gone}/heatmap.png", 3 * DAY),  # the layout before: the folder names the study
    ]
    young = _file(root, f"derived/{folder}/{study.pk}-heatmap-x2.png", 3600)  # its row may be on its way
    unknown = _file(root, "derived/ab/notes.txt", 3 * DAY)  # names no study: not ours to judge
    found = housekeeping.prune_orphan_files(dry_run=True)
    assert sorted(found.orphans) == sorted(str(p.relative_to(root)) for p in orphans) and not found.removed
    assert all(p.exists() for p in orphans)
    out = StringIO()
    call_command("prune_orphan_files", stdout=out)
    assert "removed 3 of" in out.getvalue()
    assert not any(p.exists() for p in orphans)
    assert young.exists() and unknown.exists() and all(p.exists() for p in kept)
    assert housekeeping.prune_orphan_files().orphans == []


def test_a_store_whose_database_is_not_its_own_is_left_alone(alice, settings, monkeypatch) -> None:
    """From a review: an empty or restored database, or a bucket shared by two installations, would have had every
    file older than a day removed."""
    root = Path(settings.MEDIA_ROOT)
    studies = intake.submit_files(alice, [upload_file(f"{i}.png") for i in range(3)]).studies
    _aged([Path(f.path) for s in studies for f in (s.image, s.preview, s.thumbnail, s.model_copy)])
    monkeypatch.setattr(housekeeping, "MIN_REFUSED", 2)
    strangers = [_file(root, f"studies/{str(u)[:2]}/{u}-original.png", 2 * DAY) for u in [uuid.uuid4() for _ in "abc"]]
    run = housekeeping.prune_orphan_files()
    assert run.refused.startswith("3 of 15 files would go") and not run.removed
    assert all(p.exists() for p in strangers)
    with pytest.raises(CommandError, match="is this the store's own database"):
        call_command("prune_orphan_files", stdout=StringIO())


def test_a_file_gone_meanwhile_does_not_stop_the_run(alice, settings, monkeypatch) -> None:
    root = Path(settings.MEDIA_ROOT)
    vanishing = _file(root, f"derived/aa/{uuid.uuid4()}-overlay.jpg", 2 * DAY)
    orphan = _file(root, f"derived/bb/{uuid.uuid4()}-overlay.jpg", 2 * DAY)
    from django.core.files.storage import FileSystemStorage

    real = FileSystemStorage.get_modified_time

    def removed_by_its_own_clean_up(self: FileSystemStorage, path: str):
        if path.startswith("derived/aa/"):
            vanishing.unlink()
        return real(self, path)

    monkeypatch.setattr(FileSystemStorage, "get_modified_time", removed_by_its_own_clean_up)
    assert housekeeping.prune_orphan_files().orphans == [str(orphan.relative_to(root))]
    assert not orphan.exists()


def test_too_short_a_minimum_age_is_refused() -> None:
    with pytest.raises(CommandError, match="below 1 would take files whose rows are on their way"):
        call_command("prune_orphan_files", "--min-age-hours", "0")


def test_an_empty_store_has_nothing_to_prune(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    assert housekeeping.prune_orphan_files().orphans == []


def test_the_beat_runs_it_at_a_time_of_day(settings) -> None:
    """A 24-hour interval counts from beat's start: a service restarted more often than daily would never run it."""
    from celery.schedules import crontab

    entry = settings.CELERY_BEAT_SCHEDULE["prune-orphan-files"]
    assert (
        isinstance(entry["schedule"], crontab) and settings.CELERY_TASK_ROUTES[entry["task"]]["queue"] == "maintenance"
    )
