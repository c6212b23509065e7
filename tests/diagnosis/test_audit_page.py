"""The audit page in words: people by name, details as sentences, thumbnail loads folded into the page views."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from diagnosis import audit, audit_words, people, reviews
from diagnosis.audit import Origin
from diagnosis.models import AuditAction, AuditEvent, Label, Role
from tests import factories
from tests.factories import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(clinic_a):
    user = make_member("ann", clinic_a, Role.ADMIN)
    user.first_name, user.last_name = "Ann", "Admin"
    user.save()
    return user


def _page(admin, **params: str) -> str:
    client = Client()
    client.force_login(admin)
    return client.get(reverse("diagnosis:audit"), params).content.decode()


def test_people_are_named_and_details_are_sentences(admin, alice, clinic_a) -> None:
    alice.first_name, alice.last_name = "Alice", "Liddell"
    alice.save()
    people.set_role(admin, alice.membership, Role.REVIEWER, Origin())
    reviews.review_study(alice, factories.judged_study(alice, Label.PNEUMONIA), agrees=False, note="")
    audit.record(admin, AuditAction.EXPORT, detail={"what": "worklist_csv", "filters": {"reviewed": "yes"}})
    page = _page(admin)
    assert "changed the role of Alice Liddell from clinician to reviewer" in page
    assert "disagreed with the model (Pneumonia): Normal" in page
    assert "exported the Worklist as CSV, filtered by reviewed yes" in page
    assert ">Ann Admin</td>" in page and ">Alice Liddell</td>" in page  # who, by name
    assert f"user {alice.pk}" not in page  # the changed member is named, not numbered
    for repr_sign in ("{'", "': ", "True", "None"):  # no Python dict, bool or None reprs
        assert repr_sign not in page.split('id="audit"')[1], repr_sign


def test_a_user_without_a_full_name_is_shown_by_username(alice) -> None:
    event = audit.record(alice, AuditAction.VIEW_STUDY, detail={"via": "report"})
    (line,) = audit_words.lines([event])
    assert (line.who, line.detail) == ("alice", "opened the printable report")


def test_unknown_details_read_as_words_not_reprs() -> None:
    assert audit_words.words({"ae_title": "PACS", "ok": True, "sent": ["sr", "sc"], "error": None}) == (
        "ae title: PACS; ok: yes; sent: sr, sc; error: none"
    )


def test_thumbnail_loads_are_collapsed_by_default_and_listed_on_request(admin, alice) -> None:
    study = factories.judged_study(alice)
    client = Client()
    client.force_login(alice)
    client.get(reverse("diagnosis:study", args=[study.pk]))
    for _ in range(3):
        client.get(reverse("diagnosis:study_file", args=[study.pk, "thumbnail"]))
    client.get(reverse("diagnosis:study_file", args=[study.pk, "heatmap"]))
    assert AuditEvent.objects.filter(action=AuditAction.VIEW_FILE).count() == 4  # all are still recorded
    page = _page(admin)
    assert "loaded a thumbnail" not in page and "loaded the Grad-CAM heatmap" in page
    assert "opened the study page" in page
    assert 'id="thumbnails-collapsed">3 thumbnail loads' in page
    listed = _page(admin, thumbnails="listed")
    assert listed.count("loaded a thumbnail") == 3 and 'id="thumbnails-collapsed"' not in listed
