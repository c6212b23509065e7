"""The site's operating point: proposed from its own evidence, adopted by an admin, versioned, revertible, used by
every result recorded after it and by none before, and invalid for another model version."""

from __future__ import annotations

from typing import Any

import pytest

from diagnosis import jobs
from diagnosis.models import AuditAction, AuditEvent, OperatingPoint, Role
from diagnosis.pipeline import BatchRun
from diagnosis.site import operating_points
from tests import factories
from tests.factories import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(clinic_a: Any) -> Any:
    return make_member("ada", clinic_a, Role.ADMIN)


def test_adopting_makes_a_version_in_force_and_audits_it(admin: Any, clinic_a: Any) -> None:
    factories.separable_site(admin)
    row = operating_points.adopt(user=admin, target_sensitivity=0.95, reason="acceptance set")
    assert row.version == 1 and operating_points.in_force(clinic_a.pk, row.model_version) == row
    assert row.evidence["n_positive"] == 60 and len(row.evidence["study_ids"]) == 120
    assert 0 < row.threshold < 1 and row.slope > 0
    event = AuditEvent.objects.get(action=AuditAction.OPERATING_POINT)
    assert event.detail["version"] == 1 and event.detail["reason"] == "acceptance set"


def test_fewer_than_fifty_of_a_class_cannot_be_adopted(admin: Any, clinic_a: Any) -> None:
    factories.site_studies(admin, [1.0] * 49 + [6.0] * 60, [0] * 49 + [1] * 60)
    standing = operating_points.standing(clinic_a)
    assert standing.proposal is not None and not standing.proposal.enough
    assert "49 normal" in standing.why_not and "at least 50" in standing.why_not
    with pytest.raises(operating_points.NotEnoughEvidence):
        operating_points.adopt(user=admin, target_sensitivity=0.95, reason="too early")
    assert not OperatingPoint.objects.exists()


def test_a_reviewer_cannot_adopt(clinic_a: Any, admin: Any) -> None:
    from django.core.exceptions import PermissionDenied

    factories.separable_site(admin)
    with pytest.raises(PermissionDenied):
        operating_points.adopt(user=make_member("rita", clinic_a, Role.REVIEWER), target_sensitivity=0.9, reason="x")


def test_versions_and_reverts_never_rewrite_history(admin: Any, clinic_a: Any) -> None:
    factories.separable_site(admin)
    first = operating_points.adopt(user=admin, target_sensitivity=0.90, reason="first")
    second = operating_points.adopt(user=admin, target_sensitivity=0.99, reason="second")
    first.refresh_from_db()
    assert first.retired_at is not None and second.version == 2
    back = operating_points.revert(user=admin, reason="too many false positives")
    assert back is not None and back.version == 3 and back.reinstates == first and back.threshold == first.threshold
    assert OperatingPoint.objects.count() == 3  # nothing deleted or changed but retired_at
    assert operating_points.in_force(clinic_a.pk, first.model_version) == back


def test_reverting_the_only_point_goes_back_to_the_card(admin: Any, clinic_a: Any) -> None:
    factories.separable_site(admin)
    row = operating_points.adopt(user=admin, target_sensitivity=0.95, reason="first")
    assert operating_points.revert(user=admin, reason="undo") is None
    assert operating_points.in_force(clinic_a.pk, row.model_version) is None


def test_reverting_after_a_revert_to_the_card_goes_back_to_the_card(admin: Any, clinic_a: Any) -> None:
    """Undo means the point in force before the last change: a point the admin withdrew is not brought back."""
    factories.separable_site(admin)
    operating_points.adopt(user=admin, target_sensitivity=0.90, reason="first")
    assert operating_points.revert(user=admin, reason="back to the card") is None
    second = operating_points.adopt(user=admin, target_sensitivity=0.99, reason="second")
    assert operating_points.revert(user=admin, reason="undo the second") is None
    assert operating_points.in_force(clinic_a.pk, second.model_version) is None
    assert OperatingPoint.objects.count() == 2


def test_a_new_model_version_invalidates_the_point(admin: Any, clinic_a: Any) -> None:
    factories.separable_site(admin)
    row = operating_points.adopt(user=admin, target_sensitivity=0.95, reason="first")
    OperatingPoint.objects.filter(pk=row.pk).update(model_version="an-older-model")
    standing = operating_points.standing(clinic_a)
    assert standing.in_force is None and standing.stale == row and not standing.validated
    assert operating_points.points_for([clinic_a.pk], standing.model_version) == {}


def test_results_record_the_point_they_were_judged_with_and_keep_it(admin: Any, clinic_a: Any) -> None:
    """The pipeline stamps each result with its clinic's point in force; adopting later rewrites nothing."""
    factories.separable_site(admin)
    before = factories.study(admin)
    row = operating_points.adopt(user=admin, target_sensitivity=0.95, reason="first")
    after = factories.study(admin)
    run = BatchRun("w|h|1")
    for study, point in ((before, None), (after, row)):
        job = jobs.claim_job(study.job.pk)
        assert job is not None
        run.points[job.pk] = point
        _, result = _record(run, job)
        assert result.operating_point_id == (point.pk if point else None)
    operating_points.adopt(user=admin, target_sensitivity=0.99, reason="second")
    after.refresh_from_db()
    assert after.result.operating_point == row


def _record(run: BatchRun, job: Any) -> tuple[Any, Any]:
    from concurrent.futures import Future

    from diagnosis import result_files
    from diagnosis.pipeline import _Stage

    prediction = factories.prediction()
    result = result_files.unsaved_result(job, prediction)
    future: Future[Any] = Future()
    future.set_result(([], [(job, prediction, result)]))
    run.record(_Stage([job], future))
    job.study.refresh_from_db()
    return job, job.study.result


def test_each_job_is_judged_at_its_own_clinics_point(admin: Any, bob: Any, monkeypatch: Any) -> None:
    from diagnosis import predictor

    factories.separable_site(admin)
    row = operating_points.adopt(user=admin, target_sensitivity=0.95, reason="first")
    seen: list[Any] = []

    class Capture:
        def judge_prepared(self, prepared: list[Any], points: Any = None) -> list[Any]:
            seen.extend(points)
            return [RuntimeError("not judged")] * len(prepared)

    monkeypatch.setattr(predictor, "get_predictor", lambda: Capture())
    held = [jobs.claim_job(factories.study(user).job.pk) for user in (admin, bob)]
    BatchRun("w|h|1").run_model([(job, RuntimeError("unread")) for job in held if job is not None])
    assert seen == [row.point(), None]  # clinic A's own point; clinic B has none: the card's
