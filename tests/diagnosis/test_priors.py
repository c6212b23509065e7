"""A patient's other studies (priors, and ?compare= side by side) come from the caller's clinic only: clinic B
may use the same patient reference for another child, and its study must never show on clinic A's page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from diagnosis import selectors
from diagnosis.models import Study
from tests import factories

pytestmark = pytest.mark.django_db
SAME_PATIENT = "P-0042"


@pytest.fixture
def studies(alice: User, bob: User) -> dict[str, Study]:
    """Two studies of patient P-0042 in clinic A, one of another child with the same reference in clinic B."""
    return {
        "a_now": factories.judged_study(alice, patient_ref=SAME_PATIENT),
        "a_before": factories.judged_study(alice, "NORMAL", 0.2, patient_ref=SAME_PATIENT),
        "b_same_ref": factories.judged_study(bob, patient_ref=SAME_PATIENT),
    }


def _page(user: User, study: Study, **query: str) -> tuple[str, Any]:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("diagnosis:study", args=[study.pk]), query)
    assert response.status_code == 200
    return response.content.decode(), response.context


def test_it_lists_the_priors_of_the_clinic_only(alice: User, bob: User, studies: dict[str, Study]) -> None:
    assert list(selectors.priors(alice, studies["a_now"])) == [studies["a_before"]]
    assert list(selectors.priors(bob, studies["b_same_ref"])) == []
    body, context = _page(alice, studies["a_now"])
    assert list(context["priors"]) == [studies["a_before"]]
    assert str(studies["a_before"].pk) in body
    assert str(studies["b_same_ref"].pk) not in body


def test_it_compares_side_by_side_only_within_the_clinic(alice: User, studies: dict[str, Study]) -> None:
    body, context = _page(alice, studies["a_now"], compare=str(studies["a_before"].pk))
    assert context["compare"] == studies["a_before"] and "side-by-side" in body
    body, context = _page(alice, studies["a_now"], compare=str(studies["b_same_ref"].pk))
    assert context["compare"] is None and context["compare_status"] is None
    body = re.sub(r'name="next" value="[^"]*"', "", body)  # the language switcher echoes the URL the user asked for
    assert "side-by-side" not in body and str(studies["b_same_ref"].pk) not in body
