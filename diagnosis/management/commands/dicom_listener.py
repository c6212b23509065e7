"""`python manage.py dicom_listener`: the C-STORE SCP (diagnosis.dicom_listener), in the foreground."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from diagnosis.dicom_listener import start


class Command(BaseCommand):
    help = "Receive chest radiographs by DICOM C-STORE from the PACSes configured as DICOM peers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ae-title", default=settings.DICOM_AE_TITLE, help="our AE title (DICOM_AE_TITLE)")
        parser.add_argument("--port", type=int, default=settings.DICOM_PORT, help="TCP port (DICOM_PORT)")
        parser.add_argument("--host", default="0.0.0.0", help="address to listen on")  # noqa: S104

    def handle(self, *args: Any, ae_title: str, port: int, host: str, **options: Any) -> None:
        server = start(ae_title, host, port)
        bound = server.server_address[1]
        self.stdout.write(f"DICOM listener {ae_title} on port {bound}", ending="\n")
        self.stdout.flush()
        try:
            threading.Event().wait()  # the server runs in its own thread until Ctrl-C or SIGTERM
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
