import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from diagnosis import intake, selectors
from diagnosis.filters import HistoryFilter
from diagnosis.models import JobStatus, Result
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
