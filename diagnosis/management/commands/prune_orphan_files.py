"""`manage.py prune_orphan_files [--dry-run] [--min-age-hours H]`: remove stored files no study or result refers
to (diagnosis.housekeeping; the beat runs it daily)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from diagnosis import housekeeping


class Command(BaseCommand):
    help = "Remove stored files that no study or result refers to (left by a process killed part way)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
        parser.add_argument("--min-age-hours", type=float, default=24.0, help="leave younger files alone (24)")

    def handle(self, *args: Any, **options: Any) -> None:
        hours = options["min_age_hours"]
        if hours < 1:  # a request's files are written before its rows, a batch's results before theirs
            raise CommandError("--min-age-hours below 1 would take files whose rows are on their way.")
        run = housekeeping.prune_orphan_files(timedelta(hours=hours), options["dry_run"])
        for path in run.orphans:
            self.stdout.write(path)
        if run.refused:
            raise CommandError(run.refused)
        verb = "removed" if run.removed else "would remove"
        self.stdout.write(f"{verb} {len(run.orphans)} of {run.files} files: no study or result refers to them")
