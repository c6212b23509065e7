"""`manage.py monitoring_report [--day YYYY-MM-DD] [--record]`: every clinic's model health as JSON (the rules, the
card's reference, and per clinic the drift, refusal and agreement figures with the alerts that fire). --record
also stores the alerts, audits and mails them, as the daily beat task does."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from diagnosis.site import monitoring


class Command(BaseCommand):
    help = "Print each clinic's model health (drift, refusals, agreement, alerts) as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--day", help="The last day of the window (default: today)")
        parser.add_argument("--record", action="store_true", help="Also record the alerts, as the daily task does")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["day"]) if options["day"] else None
        except ValueError:
            raise CommandError(f"--day {options['day']!r} is not a date (YYYY-MM-DD).") from None
        try:
            if options["record"]:
                monitoring.run_daily(day)
            self.stdout.write(json.dumps(monitoring.report(day), indent=2))
        except LookupError as exc:
            raise CommandError(str(exc)) from None
