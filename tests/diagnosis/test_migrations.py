"""Studies stored before clinics existed are adopted by a default clinic (migration 0003)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("diagnosis", "0001_initial")]
AFTER = [("diagnosis", "0004_study_clinic_required_audit_append_only")]


@pytest.mark.django_db(transaction=True)
def test_existing_studies_and_their_owners_join_a_default_clinic() -> None:
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        old = executor.loader.project_state(BEFORE).apps
        owner = old.get_model("auth", "User").objects.create(username="early")
        old.get_model("diagnosis", "Study").objects.create(
            owner_id=owner.pk,
            original_name="x.png",
            content_type="image/png",
            size_bytes=1,
            sha256="0" * 64,
            width=1,
            height=1,
        )
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps
        study = new.get_model("diagnosis", "Study").objects.get()
        membership = new.get_model("diagnosis", "Membership").objects.get(user_id=owner.pk)
        assert study.clinic.slug == "default" and membership.clinic_id == study.clinic_id
        assert membership.role == "clinician"
    finally:  # the next tests need the latest schema, whatever happened above
        migrate_to_latest()


def migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db
def test_the_models_and_the_migrations_agree() -> None:
    # A model change without its migration would deploy a schema the code does not expect.
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    try:
        call_command("makemigrations", "diagnosis", "--check", "--dry-run", stdout=out)
    except SystemExit as exc:
        raise AssertionError(f"models and migrations differ:\n{out.getvalue()}") from exc
