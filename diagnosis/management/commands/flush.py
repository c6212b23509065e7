"""`flush`, as Django's, except that on SQLite it lifts the audit trail's DELETE trigger (migration 0005) while it
empties the tables, as PostgreSQL's flush does with TRUNCATE, which its trigger does not see. The test suite
resets the database with flush."""

from __future__ import annotations

from typing import Any

from django.core.management.commands import flush
from django.db import connections

DROP = "DROP TRIGGER IF EXISTS diagnosis_audit_no_delete"
CREATE = """CREATE TRIGGER IF NOT EXISTS diagnosis_audit_no_delete BEFORE DELETE ON diagnosis_auditevent
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"""


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        connection = connections[options["database"]]
        if connection.vendor != "sqlite":
            return super().handle(**options)
        with connection.cursor() as cursor:
            had_trigger = bool(
                cursor.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'diagnosis_audit_no_delete'"
                ).fetchone()
            )
            cursor.execute(DROP)
        try:
            super().handle(**options)
        finally:
            if had_trigger:
                with connection.cursor() as cursor:
                    cursor.execute(CREATE)
