"""The verification sample: each call drawn at its rate, recorded with its sampling probability; acceptance
studies never drawn; a clinic's own rates before the installation's."""

from __future__ import annotations

from typing import Any

import pytest

from diagnosis import jobs, result_files
from diagnosis.models import Label, SiteSettings
from diagnosis.site import verification
from tests import factories

pytestmark = pytest.mark.django_db


def _held(owner: Any, n: int, **details: Any) -> list[Any]:
    return [jobs.claim_job(factories.study(owner, **details).job.pk) for _ in range(n)]


def test_each_call_is_drawn_at_its_rate_with_its_probability(alice: Any, clinic_a: Any, settings: Any) -> None:
    settings.VERIFICATION_SAMPLE_RATE = 0.1
    SiteSettings.objects.create(clinic=clinic_a, verification_rate_pneumonia=0.5)
    held = _held(alice, 4)
    labels = [Label.NORMAL, Label.NORMAL, Label.PNEUMONIA, Label.PNEUMONIA]
    pairs = zip(held, labels, strict=True)
    results = [result_files.unsaved_result(job, factories.prediction(label)) for job, label in pairs]
    verification.draw(list(zip(held, results, strict=True)), uniform=[0.05, 0.2, 0.4, 0.6])
    assert [r.sampling_probability for r in results] == [0.1, 0.1, 0.5, 0.5]
    assert [r.verification_sample for r in results] == [True, False, True, False]


def test_acceptance_studies_are_never_drawn(clinic_a: Any) -> None:
    from diagnosis.models import Role
    from tests.factories import make_member

    admin = make_member("ada", clinic_a, Role.ADMIN)
    held = _held(admin, 1, reference_label=Label.NORMAL)
    result = result_files.unsaved_result(held[0], factories.prediction(Label.NORMAL))
    verification.draw([(held[0], result)], uniform=[0.0])
    assert not result.verification_sample and result.sampling_probability is None
