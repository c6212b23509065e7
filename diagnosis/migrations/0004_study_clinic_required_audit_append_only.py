"""Every study belongs to a clinic; the database refuses to change audit rows."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

# The database itself refuses to change audit rows. DELETE is refused on PostgreSQL only: the test
# suite empties SQLite tables with DELETE (PostgreSQL's flush uses TRUNCATE, which the trigger ignores).
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION diagnosis_audit_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER diagnosis_audit_no_update BEFORE UPDATE OR DELETE ON diagnosis_auditevent
       FOR EACH ROW EXECUTE FUNCTION diagnosis_audit_append_only()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS diagnosis_audit_no_update ON diagnosis_auditevent",
    "DROP FUNCTION IF EXISTS diagnosis_audit_append_only()",
]
SQLITE_TRIGGERS = [
    """CREATE TRIGGER diagnosis_audit_no_update BEFORE UPDATE ON diagnosis_auditevent
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS diagnosis_audit_no_update"]


def _run(schema_editor: Any, statements: dict[str, list[str]]) -> None:
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def add_triggers(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"postgresql": POSTGRES_TRIGGERS, "sqlite": SQLITE_TRIGGERS})


def drop_triggers(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, {"postgresql": POSTGRES_DROP, "sqlite": SQLITE_DROP})


class Migration(migrations.Migration):
    dependencies = [("diagnosis", "0003_adopt_existing_studies")]

    operations = [
        migrations.AlterField(
            model_name="study",
            name="clinic",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="studies", to="diagnosis.clinic"
            ),
        ),
        migrations.RunPython(add_triggers, drop_triggers),
    ]
