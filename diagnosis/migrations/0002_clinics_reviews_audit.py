"""Clinics, memberships, patient details, reviews and the audit trail (0003 fills study.clinic, 0004 locks it)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("diagnosis", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Clinic",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=120, unique=True)),
                ("slug", models.SlugField(max_length=60, unique=True)),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["name"],
            },
        ),
        migrations.AddField(
            model_name="study",
            name="age_years",
            field=models.PositiveSmallIntegerField(blank=True, null=True, verbose_name="age (years)"),
        ),
        migrations.AddField(
            model_name="study",
            name="clinical_note",
            field=models.TextField(blank=True, max_length=2000),
        ),
        migrations.AddField(
            model_name="study",
            name="patient_ref",
            field=models.CharField(blank=True, db_index=True, max_length=64, verbose_name="patient reference"),
        ),
        migrations.AddField(
            model_name="study",
            name="projection",
            field=models.CharField(blank=True, choices=[("PA", "PA"), ("AP", "AP")], max_length=2),
        ),
        migrations.AddField(
            model_name="study",
            name="sex",
            field=models.CharField(blank=True, choices=[("F", "Female"), ("M", "Male"), ("O", "Other")], max_length=1),
        ),
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                (
                    "username",
                    models.CharField(
                        help_text="As typed, for failed logins; kept if the user is renamed", max_length=150
                    ),
                ),
                (
                    "action",
                    models.CharField(
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
                        ],
                        db_index=True,
                        max_length=20,
                    ),
                ),
                ("target_type", models.CharField(blank=True, max_length=20)),
                ("target_id", models.CharField(blank=True, db_index=True, max_length=64)),
                ("detail", models.JSONField(blank=True, default=dict)),
                ("ip", models.GenericIPAddressField(blank=True, null=True)),
                ("user_agent", models.CharField(blank=True, max_length=300)),
                (
                    "user",
                    models.ForeignKey(
                        blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "clinic",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="audit_events",
                        to="diagnosis.clinic",
                    ),
                ),
            ],
            options={
                "ordering": ["-at", "-id"],
                "indexes": [models.Index(fields=["clinic", "-at"], name="audit_clinic_at")],
            },
        ),
        migrations.AddField(
            model_name="study",
            name="clinic",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="studies", to="diagnosis.clinic"
            ),
        ),
        migrations.CreateModel(
            name="Membership",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "role",
                    models.CharField(
                        choices=[("clinician", "Clinician"), ("reviewer", "Reviewer"), ("admin", "Clinic admin")],
                        default="clinician",
                        max_length=10,
                    ),
                ),
                ("created", models.DateTimeField(auto_now_add=True)),
                (
                    "clinic",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="memberships", to="diagnosis.clinic"
                    ),
                ),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="membership",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="Review",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("agrees", models.BooleanField(help_text="The final label is the model's label")),
                (
                    "final_label",
                    models.CharField(
                        choices=[("NORMAL", "Normal"), ("PNEUMONIA", "Pneumonia")], db_index=True, max_length=10
                    ),
                ),
                ("note", models.TextField(blank=True, max_length=2000)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("updated", models.DateTimeField(auto_now=True)),
                (
                    "reviewer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="reviews", to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "study",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE, related_name="review", to="diagnosis.study"
                    ),
                ),
            ],
        ),
    ]
