"""Two demo clinics with a clinician, a reviewer and a clinic admin each, all with one password.

    python manage.py create_demo_clinics --password <password>

Running it again changes nothing (existing users keep their password). `make run` calls it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from diagnosis.models import Clinic, Membership, Role

DEMO_CLINICS = [("north", "Northside Clinic"), ("river", "Riverside Clinic")]
DEMO_ROLES = [("clinician", Role.CLINICIAN), ("reviewer", Role.REVIEWER), ("admin", Role.ADMIN)]


def demo_username(slug: str, role_name: str) -> str:
    return f"{slug}-{role_name}"


class Command(BaseCommand):
    help = "Create two demo clinics with three users each (clinician, reviewer, clinic admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", required=True, help="the password of every demo user created now")

    @transaction.atomic
    def handle(self, *args: Any, password: str, **options: Any) -> None:
        for slug, name in DEMO_CLINICS:
            clinic, _ = Clinic.objects.get_or_create(slug=slug, defaults={"name": name})
            for role_name, role in DEMO_ROLES:
                username = demo_username(slug, role_name)
                user, created = User.objects.get_or_create(
                    username=username, defaults={"email": f"{username}@example.org"}
                )
                if created:
                    user.set_password(password)
                    user.save(update_fields=["password"])
                    self.stdout.write(f"created {username} ({role.label}, {name})")
                Membership.objects.get_or_create(user=user, defaults={"clinic": clinic, "role": role})
