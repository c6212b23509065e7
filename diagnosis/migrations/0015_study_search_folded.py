"""Study.search_folded: the reference, file name and note folded for search (case, accents, đ), filled for the
studies stored before it, in chunks."""

from typing import Any

from django.db import migrations, models

from diagnosis.models.studies import search_text

CHUNK = 500


def fill(apps: Any, schema_editor: Any) -> None:
    study_model = apps.get_model("diagnosis", "Study")
    rows = study_model.objects.only("pk", "patient_ref", "original_name", "clinical_note").order_by("pk")
    chunk = []
    for study in rows.iterator(chunk_size=CHUNK):
        study.search_folded = search_text(study.patient_ref, study.original_name, study.clinical_note)
        chunk.append(study)
        if len(chunk) == CHUNK:
            study_model.objects.bulk_update(chunk, ["search_folded"])
            chunk = []
    study_model.objects.bulk_update(chunk, ["search_folded"])


class Migration(migrations.Migration):
    dependencies = [
        ("diagnosis", "0014_result_runtime"),
    ]

    operations = [
        migrations.AddField(
            model_name="study",
            name="search_folded",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
