# Issue 29: each clinic's language and time zone, each member's language. Existing clinics get TZ_NAME, the zone
# their pages showed until now, and follow their members' browsers for the language, as before.

from django.db import migrations, models

import diagnosis.models.clinics


class Migration(migrations.Migration):
    dependencies = [
        ("diagnosis", "0015_study_search_folded"),
    ]

    operations = [
        migrations.AddField(
            model_name="clinic",
            name="language",
            field=models.CharField(
                blank=True,
                choices=diagnosis.models.clinics.language_choices,
                help_text="Blank: each browser's language.",
                max_length=10,
                verbose_name="language",
            ),
        ),
        migrations.AddField(
            model_name="clinic",
            name="time_zone",
            field=models.CharField(
                default=diagnosis.models.clinics.default_time_zone,
                max_length=64,
                validators=[diagnosis.models.clinics.validate_time_zone],
                verbose_name="time zone",
            ),
        ),
        migrations.AddField(
            model_name="membership",
            name="language",
            field=models.CharField(
                blank=True,
                choices=diagnosis.models.clinics.language_choices,
                help_text="Blank: the clinic's language.",
                max_length=10,
                verbose_name="language",
            ),
        ),
    ]
