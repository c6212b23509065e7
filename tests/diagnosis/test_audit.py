from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.db import DatabaseError, connection, transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from diagnosis import audit
from diagnosis.audit import Origin
from diagnosis.models import AppendOnlyError, AuditAction, AuditEvent, Clinic, Role
from tests import factories
from tests.factories import make_member, upload_file

pytestmark = pytest.mark.django_db


def test_events_cannot_be_changed_or_deleted_through_the_orm(alice) -> None:
    event = audit.record(alice, AuditAction.EXPORT)
    event.detail = {"forged": True}
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(username="mallory")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).detail == {}


def test_the_database_refuses_to_rewrite_history(alice) -> None:
    event = audit.record(alice, AuditAction.EXPORT)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE diagnosis_auditevent SET username = 'mallory' WHERE id = %s", [event.pk])
    # On SQLite as on PostgreSQL (issue 15 §2.5): DELETE is refused too.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM diagnosis_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).username == "alice"


@pytest.mark.django_db(transaction=True)
def test_flush_still_empties_the_trail_and_keeps_the_trigger() -> None:
    """The test suite resets with flush; on SQLite it lifts the DELETE trigger only while it runs."""
    from django.core.management import call_command

    audit.record(None, AuditAction.LOGIN_FAILED, username="x")
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEvent.objects.exists()
    event = audit.record(None, AuditAction.LOGIN_FAILED, username="y")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM diagnosis_auditevent WHERE id = %s", [event.pk])


def test_upload_records_who_what_and_from_where(alice) -> None:
    client = Client(REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="pytest-browser")
    client.force_login(alice)
    response = client.post(reverse("diagnosis:upload"), {"images": upload_file()})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action=AuditAction.UPLOAD)
    assert (event.username, event.ip, event.user_agent, event.target_type) == (
        "alice",
        "10.1.2.3",
        "pytest-browser",
        "study",
    )
    assert event.clinic == alice.membership.clinic and event.detail["file_name"] == "chest.png"


def test_login_logout_and_failed_login_are_recorded(alice, client) -> None:
    client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    client.post(reverse("login"), {"username": "alice", "password": "alice-pass-123"})
    client.post(reverse("logout"))
    client.post(reverse("login"), {"username": "nobody", "password": "x"})
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "username", "clinic__slug"))
    assert actions == [
        ("login_failed", "alice", "a"),  # shown to the clinic of the account that was tried
        ("login", "alice", "a"),
        ("logout", "alice", "a"),
        ("login_failed", "nobody", None),
    ]


def test_views_of_studies_and_files_are_recorded_but_status_polls_are_not(alice, client) -> None:
    study = factories.judged_study(alice)
    client.force_login(alice)
    client.get(reverse("diagnosis:study", args=[study.pk]))
    client.get(reverse("diagnosis:study_status", args=[study.pk]))
    client.get(reverse("diagnosis:study_file", args=[study.pk, "heatmap"]))
    client.get(reverse("diagnosis:study_report", args=[study.pk]))
    views = AuditEvent.objects.exclude(action__in=["upload", "login"]).order_by("id")
    assert [(e.action, e.detail) for e in views] == [
        ("view_study", {"via": "page"}),
        ("view_file", {"file": "heatmap"}),
        ("view_study", {"via": "report"}),
    ]
    assert {e.target_id for e in views} == {str(study.pk)}


def test_a_refused_view_of_another_clinics_study_leaves_their_trail_alone(alice, bob, client) -> None:
    study = factories.judged_study(alice)
    client.force_login(bob)
    assert client.get(reverse("diagnosis:study", args=[study.pk])).status_code == 404
    assert not AuditEvent.objects.filter(action=AuditAction.VIEW_STUDY).exists()


def test_the_admin_sees_only_their_clinics_trail_and_exports_it_as_csv(alice, bob, clinic_a, client) -> None:
    admin = make_member("ann", clinic_a, Role.ADMIN)
    audit.record(alice, AuditAction.EXPORT, origin=Origin(user_agent='=HYPERLINK("http://evil")'))
    audit.record(bob, AuditAction.EXPORT, detail={"note": "clinic b"})
    client.force_login(admin)
    page = client.get(reverse("diagnosis:audit")).content.decode()
    assert "alice" in page and "clinic b" not in page
    response = client.get(reverse("diagnosis:audit_export"), {"username": "alice"})
    assert response["Content-Type"] == "text/csv; charset=utf-8" and "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == audit.CSV_COLUMNS
    # The export was recorded before it ran, by ann: not in this alice-only export; alice's one row is.
    assert [r[1] for r in rows[1:]] == ["alice"]
    assert rows[1][7].startswith("'=")  # a cell a spreadsheet would run as a formula is not exported as one
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT, username="ann").count() == 1


def test_a_forwarded_address_is_trusted_only_when_configured(rf, settings) -> None:
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    settings.AUDIT_TRUST_X_FORWARDED_FOR = False
    assert Origin.of(request).ip == "10.0.0.1"
    settings.AUDIT_TRUST_X_FORWARDED_FOR = True
    assert Origin.of(request).ip == "203.0.113.9"


def test_a_spoofed_forwarded_entry_is_ignored(rf, settings) -> None:
    """Issue 15 §2.6: the client writes "X-Forwarded-For: 198.51.100.66"; the proxy appends the real address."""
    settings.AUDIT_TRUST_X_FORWARDED_FOR = True
    one_proxy = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.66, 203.0.113.9")
    settings.AUDIT_PROXY_COUNT = 1
    assert Origin.of(one_proxy).ip == "203.0.113.9"
    two_proxies = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.66, 203.0.113.9, 10.0.0.1")
    settings.AUDIT_PROXY_COUNT = 2
    assert Origin.of(two_proxies).ip == "203.0.113.9"
    too_few = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert Origin.of(too_few).ip == "10.0.0.2"


def test_garbage_in_the_address_is_not_stored(alice) -> None:
    assert audit.record(alice, AuditAction.LOGIN, origin=Origin(ip="<script>")).ip is None


# Function by function: where a request came from, what one event records, when loading an image is part of an
# opening already recorded, whose clinic a failed login belongs to, and the CSV rows.
def test_origin_of_a_request_is_its_address_agent_and_whether_it_was_an_image(rf: RequestFactory) -> None:
    request = rf.get("/", REMOTE_ADDR="198.51.100.4", HTTP_USER_AGENT="A" * 400, HTTP_SEC_FETCH_DEST="image")
    assert Origin.of(request) == Origin(ip="198.51.100.4", user_agent="A" * 300, embedded=True)
    for dest in ("document", "empty", None):
        request = rf.get("/", REMOTE_ADDR="198.51.100.4")
        if dest:
            request.META["HTTP_SEC_FETCH_DEST"] = dest
        plain = Origin.of(request)
        assert plain == Origin(ip="198.51.100.4", user_agent="", embedded=False)
    assert Origin.of(None) == Origin() == Origin(ip=None, user_agent="", embedded=False)


def test_the_forwarded_entry_counted_from_the_right_by_the_number_of_proxies(rf: RequestFactory, settings) -> None:
    settings.AUDIT_TRUST_X_FORWARDED_FOR, settings.AUDIT_PROXY_COUNT = True, 2
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9 ,, 10.0.0.2")
    assert audit.client_address(request) == "203.0.113.9"
    short = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")  # fewer entries than proxies
    assert audit.client_address(short) == "10.0.0.1"
    settings.AUDIT_PROXY_COUNT = 1
    assert audit.client_address(request) == "10.0.0.2"
    assert audit.client_address(rf.get("/", REMOTE_ADDR="")) is None


def test_one_event_records_who_what_which_and_from_where(alice: User, clinic_a: Clinic) -> None:
    study = factories.study(alice)
    origin = Origin(ip="2001:db8::1", user_agent="Agent/1")
    event = audit.record(alice, AuditAction.VIEW_STUDY, study, {"via": "page"}, origin=origin)
    saved = AuditEvent.objects.get(pk=event.pk)
    assert (saved.user, saved.username, saved.clinic, saved.action) == (alice, "alice", clinic_a, "view_study")
    assert (saved.target_type, saved.target_id, saved.detail) == ("study", str(study.pk), {"via": "page"})
    assert (saved.ip, saved.user_agent) == ("2001:db8::1", "Agent/1")


def test_an_event_without_a_user_keeps_the_name_typed_and_the_clinic_given(clinic_a: Clinic) -> None:
    for user in (None, AnonymousUser()):
        event = audit.record(user, AuditAction.LOGIN_FAILED, username="x" * 200, clinic=clinic_a)
        saved = AuditEvent.objects.get(pk=event.pk)
        assert (saved.user, saved.username, saved.clinic) == (None, "x" * 150, clinic_a)
        assert (saved.target_type, saved.target_id, saved.detail, saved.ip) == ("", "", {}, None)


def test_record_many_writes_one_event_per_target(alice: User) -> None:
    studies = [factories.study(alice, f"{i}.png") for i in range(3)]
    events = audit.record_many(alice, AuditAction.VIEW_STUDY, [(s, {"n": i}) for i, s in enumerate(studies)])
    saved = AuditEvent.objects.filter(pk__in=[e.pk for e in events]).order_by("id")
    assert [(e.target_id, e.detail, e.username) for e in saved] == [
        (str(s.pk), {"n": i}, "alice") for i, s in enumerate(studies)
    ]


def _opened(user: User, study: object, at: datetime) -> None:
    AuditEvent.objects.create(
        at=at, user=user, username=user.username, action=AuditAction.VIEW_STUDY, target_type="study",
        target_id=str(study.pk),  # type: ignore[attr-defined]
    )  # fmt: skip


IMAGE = Origin(embedded=True)


def test_a_page_image_loaded_soon_after_the_page_is_part_of_that_opening(alice: User, clinic_a: Clinic) -> None:
    study = factories.study(alice)
    assert not audit.part_of_opening(alice, study, "heatmap", IMAGE)  # never opened
    _opened(alice, study, timezone.now() - timedelta(minutes=29))
    for file in ("preview", "heatmap", "overlay"):
        assert audit.part_of_opening(alice, study, file, IMAGE), file
    assert not audit.part_of_opening(alice, study, "original", IMAGE)  # the original is always recorded
    assert not audit.part_of_opening(alice, study, "heatmap", Origin(embedded=False))  # a download, a new tab
    assert not audit.part_of_opening(AnonymousUser(), study, "heatmap", IMAGE)


def test_an_old_opening_or_someone_elses_or_another_studys_is_not_that_opening(alice: User, clinic_a: Clinic) -> None:
    study, other = factories.study(alice), factories.study(alice, "other.png")
    colleague = factories.make_member("carl", clinic_a)
    _opened(alice, study, timezone.now() - timedelta(minutes=31))
    _opened(colleague, study, timezone.now())
    _opened(alice, other, timezone.now())
    AuditEvent.objects.create(
        user=alice, username="alice", action=AuditAction.EXPORT, target_type="study", target_id=str(study.pk)
    )
    assert not audit.part_of_opening(alice, study, "heatmap", IMAGE)


def test_a_failed_login_belongs_to_the_clinic_of_the_account_it_tried(alice: User, clinic_a: Clinic) -> None:
    assert audit.clinic_of_username("alice") == clinic_a
    assert audit.clinic_of_username("nobody") is None
    User.objects.create_user("root")  # no clinic (a platform superuser, say)
    assert audit.clinic_of_username("root") is None


def test_csv_rows_write_each_event_with_its_local_time_sorted_detail_and_blank_address(alice: User) -> None:
    event = audit.record(alice, AuditAction.EXPORT, detail={"b": 1, "a": "x"}, origin=Origin(user_agent="UA"))
    lines = list(audit.csv_rows([AuditEvent.objects.get(pk=event.pk)]))
    rows = list(csv.reader(io.StringIO("".join(lines))))
    assert rows[0] == audit.CSV_COLUMNS
    (row,) = rows[1:]
    assert datetime.fromisoformat(row[0]) == event.at
    assert row[1:] == ["alice", "export", "", "", json.dumps({"a": "x", "b": 1}), "", "UA"]


def test_csv_stream_quotes_every_cell_and_writes_none_as_empty() -> None:
    lines = list(audit.csv_stream(["a", "b"], [[None, 3], ["x", "=1"]]))
    assert lines == ['"a","b"\r\n', '"","3"\r\n', '"x","\'=1"\r\n']


def test_an_event_of_a_user_without_a_clinic_or_of_nobody_named(alice: User) -> None:
    root = User.objects.create_superuser("root", password="root-pass-123")  # a platform superuser: no clinic
    saved = AuditEvent.objects.get(pk=audit.record(root, AuditAction.LOGIN).pk)
    assert (saved.user, saved.username, saved.clinic) == (root, "root", None)
    nobody = AuditEvent.objects.get(pk=audit.record(None, AuditAction.LOGIN_FAILED).pk)
    assert (nobody.username, nobody.clinic) == ("", None)


def test_an_event_about_another_kind_of_object_with_the_same_id_is_no_opening(alice: User) -> None:
    study = factories.study(alice)
    AuditEvent.objects.create(
        user=alice, username="alice", action=AuditAction.VIEW_STUDY, target_type="batch", target_id=str(study.pk)
    )
    assert not audit.part_of_opening(alice, study, "heatmap", IMAGE)


def test_the_csv_gives_the_address_and_a_failed_logins_clinic_in_one_query(
    alice: User, clinic_a: Clinic, django_assert_num_queries
) -> None:
    event = audit.record(alice, AuditAction.LOGIN, origin=Origin(ip="203.0.113.5"))
    (row,) = list(csv.reader(io.StringIO("".join(audit.csv_rows([AuditEvent.objects.get(pk=event.pk)])))))[1:]
    assert row[6] == "203.0.113.5"
    with django_assert_num_queries(1):
        assert audit.clinic_of_username("alice") == clinic_a


def test_record_many_without_a_user_or_a_name_leaves_the_name_empty() -> None:
    (event,) = audit.record_many(None, AuditAction.LOGIN_FAILED, [(None, None)])
    assert AuditEvent.objects.get(pk=event.pk).username == ""
