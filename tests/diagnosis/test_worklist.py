from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from diagnosis import reviews
from diagnosis.models import Role, Study
from tests import factories
from tests.factories import make_member

pytestmark = pytest.mark.django_db


def _listed(client, **params) -> list[str]:
    page = client.get(reverse("diagnosis:worklist"), params).content.decode()
    return re.findall(r'data-study="([0-9a-f-]+)"', page)


@pytest.fixture
def studies(alice, bob, clinic_a):
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    s = {
        "low": factories.judged_study(alice, "NORMAL", 0.05, patient_ref="P-low"),
        "high": factories.judged_study(alice, "PNEUMONIA", 0.95, patient_ref="P-high", clinical_note="fever, cough"),
        "mid": factories.judged_study(reviewer, "PNEUMONIA", 0.85, patient_ref="P-mid"),
        "agreed": factories.judged_study(alice, "PNEUMONIA", 0.9, patient_ref="P-agreed"),
        "disputed": factories.judged_study(alice, "NORMAL", 0.3, patient_ref="P-disputed"),
        "pending": factories.study(alice, patient_ref="P-pending"),
        "other_clinic": factories.judged_study(bob, "PNEUMONIA", 0.99),
    }
    reviews.review_study(reviewer, s["agreed"], agrees=True, note="")
    reviews.review_study(reviewer, s["disputed"], agrees=False, note="")
    Study.objects.filter(pk=s["low"].pk).update(created=timezone.now() - timedelta(days=10))
    return {k: str(v.pk) for k, v in s.items()}


def test_unreviewed_likeliest_pneumonia_first_from_the_whole_clinic(alice, client, studies) -> None:
    client.force_login(alice)
    assert _listed(client) == [studies["high"], studies["mid"], studies["low"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"reviewed": "yes"}, ["agreed", "disputed"]),
        ({"reviewed": ""}, ["high", "agreed", "mid", "disputed", "low"]),
        ({"reviewed": "", "disagreement": "yes"}, ["disputed"]),
        ({"reviewed": "", "disagreement": "no"}, ["high", "agreed", "mid", "low"]),
        ({"label": "NORMAL"}, ["low"]),
        ({"patient_ref": "p-MID"}, ["mid"]),
        ({"q": "cough"}, ["high"]),
        ({"q": "rita"}, ["mid"]),
        ({"created_to": (timezone.localdate() - timedelta(days=5)).isoformat()}, ["low"]),
        ({"created_from": timezone.localdate().isoformat()}, ["high", "mid"]),
    ],
)
def test_filters(alice, client, studies, params, expected) -> None:
    client.force_login(alice)
    assert _listed(client, **params) == [studies[k] for k in expected]


def test_patients_outside_the_models_population_are_marked(alice, client) -> None:
    factories.judged_study(alice, age_years=40)
    factories.judged_study(alice, age_years=3)
    factories.judged_study(alice)
    client.force_login(alice)
    page = client.get(reverse("diagnosis:worklist")).content.decode()
    assert page.count("outside the model's population") == 1


def test_a_bad_filter_value_is_shown_not_a_server_error(alice, client, studies) -> None:
    client.force_login(alice)
    response = client.get(reverse("diagnosis:worklist"), {"created_from": "yesterday", "label": "CANCER"})
    assert response.status_code == 200 and "Enter a valid date" in response.content.decode()


def test_the_worklist_costs_the_same_queries_for_3_or_12_studies(alice, client) -> None:
    client.force_login(alice)
    counts = []
    for n in (3, 9):
        for _ in range(n):
            factories.judged_study(alice)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("diagnosis:worklist")).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
