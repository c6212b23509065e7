"""`manage.py prune_orphan_files [--dry-run] [--min-age-hours H]`: remove stored files no study or result refers
to (diagnosis.housekeeping; the beat runs it daily)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from diagnosis import housekeeping


class Command(BaseCommand):
    help = "Remove stored files that no study or result refers to (left by a process killed part way)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
        parser.add_argument("--min-age-hours", type=float, default=24.0, help="leave younger files alone (24)")

    def handle(self, *args: Any, **options: Any) -> None:
        found = housekeeping.prune_orphan_files(timedelta(hours=options["min_age_hours"]), options["dry_run"])
        for path in found:
            self.stdout.write(path)
        verb = "would remove" if options["dry_run"] else "removed"
        self.stdout.write(f"{verb} {len(found)} files that no study or result refers to")
