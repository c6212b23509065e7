import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from django.utils import timezone

from diagnosis import intake, selectors
from diagnosis.filters import HistoryFilter
from diagnosis.models import Batch, JobStatus, Result, Study
from tests.factories import upload_file

pytestmark = pytest.mark.django_db


def test_reads_are_scoped_to_the_owner(alice, bob) -> None:
    mine = intake.submit_files(alice, [upload_file()]).studies[0]
    intake.submit_files(bob, [upload_file()])
    assert list(selectors.studies_for(alice)) == [mine]
    assert selectors.get_study(alice, mine.pk) == mine
    with pytest.raises(Http404):
        selectors.get_study(bob, mine.pk)
    with pytest.raises(Http404):
        selectors.get_study(alice, uuid.uuid4())
    with pytest.raises(Http404):
        selectors.get_study(alice, "not-a-uuid")
    assert list(selectors.studies_for(AnonymousUser())) == []


def test_history_filters_and_orders_newest_first(alice) -> None:
    a, b, _c = intake.submit_files(alice, [upload_file("a.png"), upload_file("b.png"), upload_file("c.png")]).studies
    for study, label in ((a, "NORMAL"), (b, "PNEUMONIA")):
        Result.objects.create(
            study=study, label=label, probability=0.5, threshold=0.5, model_version="v", inference_ms=1
        )
        study.job.status = JobStatus.DONE
        study.job.save()
    assert [s.original_name for s in selectors.history(alice)] == ["c.png", "b.png", "a.png"]
    pneumonia = HistoryFilter({"label": "PNEUMONIA"}, queryset=selectors.history(alice)).qs
    queued = HistoryFilter({"status": "queued"}, queryset=selectors.history(alice)).qs
    assert [s.original_name for s in pneumonia] == ["b.png"]
    assert [s.original_name for s in queued] == ["c.png"]


def test_audit_and_people_reads_are_for_clinic_admins_only(alice, clinic_a) -> None:
    from diagnosis import audit
    from diagnosis.models import AuditAction, Role
    from tests.factories import make_member

    admin = make_member("ann", clinic_a, Role.ADMIN)
    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    audit.record(alice, AuditAction.LOGIN)
    assert selectors.audit_events(admin).count() == 1 and selectors.members(admin).count() == 3
    for user in (alice, reviewer):
        assert not selectors.audit_events(user).exists() and not selectors.members(user).exists()


IDS = [uuid.UUID(int=i) for i in range(1, 5)]


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (IDS[0], (None, IDS[1])),  # the first: no previous
        (IDS[1], (IDS[0], IDS[2])),
        (IDS[2], (IDS[1], IDS[3])),
        (IDS[3], (IDS[2], None)),  # the last: no next
        (uuid.UUID(int=99), (None, IDS[0])),  # just reviewed, gone from the list: on to the list's first
    ],
    ids=["first", "second", "third", "last", "gone"],
)
def test_neighbours_in_a_lists_order(current: uuid.UUID, expected: tuple[uuid.UUID | None, uuid.UUID | None]) -> None:
    assert selectors.neighbours(IDS, current) == expected


def test_neighbours_of_a_list_of_one_or_none() -> None:
    assert selectors.neighbours([IDS[0]], IDS[0]) == (None, None)
    assert selectors.neighbours([], IDS[0]) == (None, None)


def test_a_batch_is_found_by_its_id_for_its_submitter_only(alice, bob) -> None:
    first = intake.submit_batch(alice, [upload_file("1.png")], None)[0]
    second = intake.submit_batch(alice, [upload_file("2.png")], None)[0]
    assert selectors.get_batch(alice, first.pk) == first and selectors.get_batch(alice, second.pk) == second
    refused_ids: list[tuple[Any, uuid.UUID | str]] = [(bob, first.pk), (alice, uuid.uuid4()), (alice, "not-a-uuid")]
    for user, batch_id in [*refused_ids, (AnonymousUser(), first.pk)]:
        with pytest.raises(Http404) as refused:
            selectors.get_batch(user, batch_id)
        assert str(refused.value) == "No such batch."  # what the API's 404 says, as its detail


def test_batch_progress_counts_each_status_and_an_empty_batch_is_done(alice) -> None:
    batch, submission = intake.submit_batch(alice, [upload_file(f"{i}.png") for i in range(3)], None)
    progress: dict[str, Any] = selectors.batch_progress(batch)
    assert progress["total"] == 3 and progress["counts"][JobStatus.QUEUED] == 3 and progress["progress"] == 0
    assert sorted(progress["studies"]) == sorted(str(s.pk) for s in submission.studies)
    empty = Batch.objects.create(owner=alice)
    assert selectors.batch_progress(empty)["progress"] == 1.0 and selectors.batch_progress(empty)["total"] == 0


def test_the_audit_trail_is_newest_first_and_by_id_within_the_same_instant(alice, clinic_a) -> None:
    from diagnosis.models import AuditAction, AuditEvent, Role
    from tests.factories import make_member

    admin = make_member("ann", clinic_a, Role.ADMIN)
    now = timezone.now()
    # Written in this order: the newest, two at one instant, then the oldest (a clock stepped back).
    made = [
        AuditEvent.objects.create(at=at, clinic=clinic_a, user=alice, username="alice", action=AuditAction.LOGIN)
        for at in (now, now - timedelta(hours=1), now - timedelta(hours=1), now - timedelta(hours=2))
    ]
    expected = [made[0].pk, made[2].pk, made[1].pk, made[3].pk]
    assert list(selectors.audit_events(admin).values_list("id", flat=True)) == expected


def test_the_people_list_reads_each_persons_name_in_one_query(alice, clinic_a, django_assert_num_queries) -> None:
    from diagnosis.models import Role
    from tests.factories import make_member

    admin = make_member("ann", clinic_a, Role.ADMIN)
    make_member("rita", clinic_a, Role.REVIEWER)
    people = selectors.members(admin)
    with django_assert_num_queries(1):
        assert [m.user.username for m in people] == ["alice", "ann", "rita"]


def test_the_dashboard_covers_thirty_days_unless_told(alice) -> None:
    days = selectors.dashboard(alice).days
    assert len(days) == 30 and days[-1].day == timezone.localdate()
    assert len(selectors.dashboard(alice, days=7).days) == 7


def test_the_worklist_puts_the_unreviewed_verification_sample_first_then_the_likeliest_then_the_newest(
    alice, clinic_a
) -> None:
    from diagnosis import reviews
    from diagnosis.models import Role
    from tests import factories
    from tests.factories import make_member

    reviewer = make_member("rita", clinic_a, Role.REVIEWER)
    made = {
        ref: factories.judged_study(alice, "PNEUMONIA", p, patient_ref=ref)
        for ref, p in [("low", 0.2), ("high", 0.95), ("tie-old", 0.5), ("tie-new", 0.5), ("sample", 0.1)]
    }
    made["sampled-reviewed"] = factories.judged_study(alice, "PNEUMONIA", 0.3, patient_ref="sampled-reviewed")
    made["acceptance"] = factories.judged_study(alice, "PNEUMONIA", 0.99, patient_ref="acceptance")
    factories.study(alice, patient_ref="queued")  # no result yet: not on the worklist
    Result.objects.update(verification_sample=False)
    Result.objects.filter(study__patient_ref__in=["sample", "sampled-reviewed"]).update(verification_sample=True)
    Study.objects.filter(patient_ref="acceptance").update(acceptance=True)
    long_ago = timezone.now() - timedelta(days=3)
    Study.objects.filter(patient_ref="tie-old").update(created=long_ago)
    Study.objects.filter(patient_ref="tie-new").update(created=long_ago + timedelta(hours=1))
    reviews.review_study(reviewer, made["sampled-reviewed"], agrees=True, note="")
    order = [s.patient_ref for s in selectors.worklist(reviewer)]
    assert order == ["sample", "high", "tie-new", "tie-old", "sampled-reviewed", "low"]


def test_empty_days_on_the_dashboard_count_nothing(alice) -> None:
    days = selectors.dashboard(alice, days=3).days
    assert [(d.total, d.normal, d.pneumonia, d.rejected, d.failed) for d in days] == [(0, 0, 0, 0, 0)] * 3


def test_a_study_read_brings_its_job_result_review_owner_and_clinic_in_one_query(
    alice, clinic_a, django_assert_num_queries
) -> None:
    from tests import factories

    judged = factories.judged_study(alice, "PNEUMONIA", 0.8)
    listed = selectors.studies_for(alice)
    with django_assert_num_queries(1):
        (s,) = list(listed)
        assert (s.job.status, s.result.label, s.owner.username) == (JobStatus.DONE, "PNEUMONIA", "alice")
    with django_assert_num_queries(1):  # alice's membership is known: the study with everything it shows
        s = selectors.get_study(alice, judged.pk)
        assert (s.job.status, s.result.label, s.owner.username) == (JobStatus.DONE, "PNEUMONIA", "alice")
        assert s.clinic == clinic_a
    with pytest.raises(Http404) as refused:
        selectors.get_study(alice, uuid.uuid4())
    assert str(refused.value) == "No such study."  # what the API's 404 says, as its detail
