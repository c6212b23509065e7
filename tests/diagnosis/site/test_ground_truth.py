"""Local ground truth: the acceptance set, and the reviewed verification sample weighted by inverse probability;
reviews a reviewer chose are never used."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from diagnosis.models import Role
from diagnosis.site import card
from diagnosis.site.ground_truth import ACCEPTANCE, VERIFICATION, local_ground_truth
from tests import factories
from tests.factories import make_member

pytestmark = pytest.mark.django_db


def test_acceptance_and_verification_sample_with_scaled_inverse_probability_weights(clinic_a: Any) -> None:
    admin = make_member("ada", clinic_a, Role.ADMIN)
    factories.site_studies(admin, [1.0, 5.0], [0, 1])  # acceptance, weight 1
    factories.site_studies(admin, [0.5, 0.6], [0, 0], acceptance=False, sampled=0.1)
    factories.site_studies(admin, [4.0], [1], acceptance=False, sampled=0.5)
    factories.site_studies(admin, [3.0], [1], acceptance=False)  # reviewed? no: not sampled, never used
    truth = local_ground_truth(clinic_id=clinic_a.pk, model_version=card.model_version())
    assert truth.count(ACCEPTANCE) == 2 and truth.count(VERIFICATION) == 3
    sampled = truth.only(VERIFICATION)
    # 1/0.1, 1/0.1, 1/0.5 = 10, 10, 2, scaled to sum to 3
    assert sampled.weights == pytest.approx(np.array([10, 10, 2]) * 3 / 22)
    assert truth.only(ACCEPTANCE).weights.tolist() == [1.0, 1.0]


def test_another_model_versions_results_and_another_clinic_are_not_counted(clinic_a: Any, clinic_b: Any) -> None:
    factories.site_studies(make_member("ada", clinic_a, Role.ADMIN), [1.0, 5.0], [0, 1], model_version="older")
    factories.site_studies(make_member("bea", clinic_b, Role.ADMIN), [1.0, 5.0], [0, 1])
    assert local_ground_truth(clinic_id=clinic_a.pk, model_version=card.model_version()).count(ACCEPTANCE) == 0
