"""Studies stored before clinics existed move to a "Default clinic" whose users become its clinicians."""

from typing import Any

from django.db import migrations


def adopt_existing_studies(apps: Any, schema_editor: Any) -> None:
    Study = apps.get_model("diagnosis", "Study")
    if not Study.objects.exists():
        return
    Clinic = apps.get_model("diagnosis", "Clinic")
    Membership = apps.get_model("diagnosis", "Membership")
    clinic, _ = Clinic.objects.get_or_create(slug="default", defaults={"name": "Default clinic"})
    for owner_id in Study.objects.values_list("owner_id", flat=True).distinct():
        Membership.objects.get_or_create(user_id=owner_id, defaults={"clinic": clinic, "role": "clinician"})
    Study.objects.filter(clinic__isnull=True).update(clinic=clinic)


class Migration(migrations.Migration):
    dependencies = [("diagnosis", "0002_clinics_reviews_audit")]

    operations = [migrations.RunPython(adopt_existing_studies, migrations.RunPython.noop)]
