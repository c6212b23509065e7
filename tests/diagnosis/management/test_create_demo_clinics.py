from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from diagnosis.models import Clinic, Membership

pytestmark = pytest.mark.django_db


def test_two_clinics_with_three_users_each_and_a_second_run_changes_nothing() -> None:
    out = io.StringIO()
    call_command("create_demo_clinics", password="first-pass-123", stdout=out)
    assert out.getvalue().count("created ") == 6
    call_command("create_demo_clinics", password="second-pass-456", stdout=io.StringIO())
    roles = sorted(Membership.objects.values_list("clinic__slug", "role", "user__username"))
    assert roles == [
        ("north", "admin", "north-admin"),
        ("north", "clinician", "north-clinician"),
        ("north", "reviewer", "north-reviewer"),
        ("river", "admin", "river-admin"),
        ("river", "clinician", "river-clinician"),
        ("river", "reviewer", "river-reviewer"),
    ]
    assert Clinic.objects.count() == 2 and User.objects.count() == 6
    assert Client().login(username="river-reviewer", password="first-pass-123")  # passwords are kept
