"""`make run`'s preparation, in one process: the schema migrated, the static files collected, the demo clinics made
(existing users keep their password) and, with --send-queued, the queued studies' jobs sent to the broker again
(the embedded Redis starts empty).

    python manage.py prepare_local --password <password> [--send-queued]

One process, where the launcher ran four: each start of Django costs about 2 s of CPU, so `make run` is ready that
much sooner.
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Migrate, collect the static files, create the demo clinics, and send the queued studies again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", required=True, help="the password of every demo user created now")
        parser.add_argument("--send-queued", action="store_true", help="send every queued study's job again")

    def handle(self, *args: Any, password: str, send_queued: bool, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        # One argument, as the launcher passes it: call_command would pass password= as two, and argparse would take
        # a password beginning with "-" for an option.
        call_command("create_demo_clinics", f"--password={password}", stdout=self.stdout)
        if send_queued:
            call_command("send_queued", verbosity=0)
