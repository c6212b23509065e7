"""`manage.py send_queued`: send every queued study's job to the broker again (diagnosis.jobs.send_all_queued), for a
broker that lost its messages. `make run` runs it at each start: its embedded Redis keeps nothing on disk."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from diagnosis import jobs


class Command(BaseCommand):
    help = "Send every queued study's job to the broker again (after the broker lost its messages)."

    def handle(self, *args: Any, **options: Any) -> None:
        sent = jobs.send_all_queued()
        if options["verbosity"]:
            self.stdout.write(f"{len(sent)} queued jobs sent to the broker again")
