"""Idempotency fingerprints, the worker holding a job, lockout audit actions; SQLite refuses audit DELETEs too."""

from typing import Any

from django.db import migrations, models

# PostgreSQL's trigger (0004) already refuses UPDATE and DELETE. `flush` (the test suite's reset) drops and
# re-creates this one around its DELETEs on SQLite, as PostgreSQL's TRUNCATE bypasses its trigger there.
SQLITE_DELETE_TRIGGER = """CREATE TRIGGER IF NOT EXISTS diagnosis_audit_no_delete BEFORE DELETE ON diagnosis_auditevent
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"""
SQLITE_DROP_DELETE_TRIGGER = "DROP TRIGGER IF EXISTS diagnosis_audit_no_delete"


def add_delete_trigger(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_DELETE_TRIGGER)


def drop_delete_trigger(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_DROP_DELETE_TRIGGER)


class Migration(migrations.Migration):
    dependencies = [("diagnosis", "0004_study_clinic_required_audit_append_only")]

    operations = [
        migrations.AddField(
            model_name="idempotentresponse",
            name="fingerprint",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="inferencejob",
            name="worker",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("login", "Login"),
                    ("login_failed", "Failed login"),
                    ("logout", "Logout"),
                    ("upload", "Upload"),
                    ("view_study", "View study"),
                    ("view_file", "View file"),
                    ("review", "Review"),
                    ("export", "Export"),
                    ("permission_change", "Permission change"),
                    ("lockout", "Locked out"),
                    ("unlock", "Unlocked"),
                ],
                db_index=True,
                max_length=20,
            ),
        ),
        migrations.RunPython(add_delete_trigger, drop_delete_trigger),
    ]
