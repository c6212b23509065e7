from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from diagnosis import reviews
from diagnosis.models import AuditEvent, Label, Review, Role
from tests import factories
from tests.factories import make_member
from tests.needs import need_postgresql

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer(clinic_a):
    return make_member("rita", clinic_a, Role.REVIEWER)


def test_disagreeing_records_the_other_label_and_a_revision_replaces_it(alice, reviewer) -> None:
    study = factories.judged_study(alice, Label.PNEUMONIA)
    review = reviews.review_study(reviewer, study, agrees=False, note="artefact")
    assert (review.final_label, review.agrees, review.note) == (Label.NORMAL, False, "artefact")
    reviews.review_study(reviewer, study, agrees=True, note="")
    assert Review.objects.get().final_label == Label.PNEUMONIA
    trail = list(AuditEvent.objects.filter(action="review").order_by("id").values_list("detail", flat=True))
    assert trail[0]["previous"] is None and trail[1]["previous"]["final_label"] == Label.NORMAL


def test_the_audit_trail_keeps_each_note_and_what_a_revision_replaced(alice, reviewer) -> None:
    """From an outside red-team pass: a note could be rewritten or erased without a trace."""
    from diagnosis.audit_words import describe

    study = factories.judged_study(alice, Label.PNEUMONIA)
    reviews.review_study(reviewer, study, agrees=False, note="Rotated film;\r\nrepeat  ")
    reviews.review_study(reviewer, study, agrees=False, note="")
    reviews.review_study(reviewer, study, agrees=True, note="Consolidation, right lower lobe")
    first, erased, third = AuditEvent.objects.filter(action="review").order_by("id")
    assert first.detail["note"] == "Rotated film;\nrepeat" and erased.detail["previous"]["note"] == first.detail["note"]
    assert describe(first) == "disagreed with the model (Pneumonia): Normal; note: “Rotated film; repeat”"
    assert describe(erased).endswith("revised a review that said Normal by rita, whose note was “Rotated film; repeat”")
    assert describe(third) == (
        "agreed with the model: Pneumonia; note: “Consolidation, right lower lobe”; "
        "revised a review that said Normal by rita, which had no note"
    )


def test_a_clinician_cannot_review_even_through_the_service(alice) -> None:
    with pytest.raises(PermissionDenied):
        reviews.review_study(alice, factories.judged_study(alice), agrees=True, note="")


def test_a_study_without_a_result_cannot_be_reviewed(alice, reviewer, client) -> None:
    study = factories.study(alice)
    with pytest.raises(reviews.ReviewError):
        reviews.review_study(reviewer, study, agrees=True, note="")
    client.force_login(reviewer)
    response = client.post(reverse("diagnosis:study_review", args=[study.pk]), {"decision": "agree"})
    assert response.status_code == 400 and "Only a study the model has judged" in response.content.decode()


def test_the_study_page_shows_the_models_call_beside_the_reviewers(alice, reviewer, client) -> None:
    study = factories.judged_study(alice, Label.NORMAL, 0.2)
    client.force_login(reviewer)
    response = client.post(
        reverse("diagnosis:study_review", args=[study.pk]), {"decision": "disagree", "note": "left lower lobe"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("diagnosis:study", args=[study.pk])
    client.force_login(alice)
    page = client.get(reverse("diagnosis:study", args=[study.pk])).content.decode()
    assert 'id="label" class="label NORMAL"' in page and 'id="review-label" class="label PNEUMONIA"' in page
    assert "disagrees with the model" in page and "left lower lobe" in page and "rita" in page
    assert 'id="review-form"' not in page  # a clinician gets no review form


def test_history_shows_which_studies_are_reviewed_and_where_reviewers_disagree(alice, reviewer, client) -> None:
    agreed, disputed = factories.judged_study(alice), factories.judged_study(alice)
    factories.judged_study(alice)
    reviews.review_study(reviewer, agreed, agrees=True, note="")
    reviews.review_study(reviewer, disputed, agrees=False, note="")
    client.force_login(alice)
    page = client.get(reverse("diagnosis:history")).content.decode()
    assert page.count("reviewed · agrees") == 1
    assert page.count("reviewed · disagrees: Normal") == 1
    assert page.count("not reviewed") == 1


def test_an_invalid_decision_is_a_form_error(alice, reviewer, client) -> None:
    study = factories.judged_study(alice)
    client.force_login(reviewer)
    response = client.post(reverse("diagnosis:study_review", args=[study.pk]), {"decision": "maybe"})
    assert response.status_code == 400 and not Review.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviews_are_serialised_and_each_audits_what_it_replaced(clinic_a) -> None:
    """Issue 15 §2.4: two reviewers saving the first review of a study at once. The study row is locked, so one
    waits for the other: the audit rows chain (the second's "previous" is the first's), and one review remains.
    PostgreSQL only: SQLite serialises every writer, so there the test passes without the lock."""
    import threading

    from django.db import connection

    need_postgresql()
    owner = make_member("owner", clinic_a)
    study = factories.judged_study(owner)
    readers = [make_member(f"rev{i}", clinic_a, Role.REVIEWER) for i in range(2)]
    barrier, errors = threading.Barrier(2), []

    def review(user, agrees: bool) -> None:
        try:
            barrier.wait(5)
            reviews.review_study(user, study, agrees=agrees, note="")
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=review, args=(u, i == 0)) for i, u in enumerate(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    events = list(AuditEvent.objects.filter(action="review").order_by("id"))
    assert len(events) == 2 and Review.objects.filter(study=study).count() == 1
    first, second = events
    assert first.detail["previous"] is None
    assert second.detail["previous"] == {
        "final_label": first.detail["final_label"],
        "reviewer__username": first.username,
        "note": first.detail["note"],
    }


def test_a_reading_saved_since_the_reviewer_read_it_is_not_replaced_unseen(alice, reviewer, clinic_a) -> None:
    """From a red-team pass: a reviewer who opened an unreviewed study, then saved after a colleague had saved a
    different reading, replaced it with only "Review saved." to show for it."""
    colleague = make_member("colin", clinic_a, Role.REVIEWER)
    study = factories.judged_study(alice, Label.PNEUMONIA)
    first = reviews.review_study(colleague, study, agrees=False, note="artefact", based_on=None)
    with pytest.raises(reviews.ReviewConflict, match=r"colin saved a reading of this study \(Normal\)") as raised:
        reviews.review_study(reviewer, study, agrees=True, note="", based_on=None)  # read before colin saved
    assert raised.value.current == first
    assert Review.objects.get().reviewer == colleague and AuditEvent.objects.filter(action="review").count() == 1
    revised = reviews.review_study(reviewer, study, agrees=True, note="", based_on=first.updated)  # having read it
    assert (revised.reviewer, revised.final_label) == (reviewer, Label.PNEUMONIA)
    with pytest.raises(reviews.ReviewConflict):
        reviews.review_study(colleague, study, agrees=False, note="", based_on=first.updated)
    reviews.review_study(colleague, study, agrees=False, note="")  # not said: the last save wins, as before
    assert Review.objects.get().reviewer == colleague


def test_the_page_shows_a_colleagues_reading_saved_meanwhile_and_a_second_save_replaces_it(
    alice, reviewer, clinic_a, client
) -> None:
    colleague = make_member("colin", clinic_a, Role.REVIEWER)
    study = factories.judged_study(alice, Label.PNEUMONIA)
    client.force_login(reviewer)
    url = reverse("diagnosis:study", args=[study.pk])
    page = client.get(url).content.decode()
    assert 'name="based_on" value="none"' in page
    reviews.review_study(colleague, study, agrees=False, note="artefact")  # while rita reads the page
    post = {"decision": "agree", "note": "consolidation", "based_on": "none"}
    conflict = client.post(reverse("diagnosis:study_review", args=[study.pk]), post)
    text = conflict.content.decode()
    assert conflict.status_code == 409 and "colin saved a reading of this study (Normal)" in text
    assert 'id="review-label" class="label NORMAL"' in text and "artefact" in text  # colin's reading is shown
    assert "consolidation" in text  # rita's note is kept in the form
    review = Review.objects.get()
    assert review.reviewer == colleague
    assert f'name="based_on" value="{review.updated.isoformat()}"' in text
    again = client.post(
        reverse("diagnosis:study_review", args=[study.pk]), {**post, "based_on": review.updated.isoformat()}
    )
    assert again.status_code == 302
    assert (Review.objects.get().reviewer, Review.objects.get().note) == (reviewer, "consolidation")
    for odd in ("yesterday", "2026-02-30T10:00:00+00:00", "2026-11-26T10:00:00"):  # no such date; no time zone
        stale = client.post(reverse("diagnosis:study_review", args=[study.pk]), {**post, "based_on": odd})
        assert stale.status_code == 400 and "out of date" in stale.content.decode(), odd


def test_a_note_with_control_characters_is_refused_and_line_breaks_are_kept(alice, reviewer, client) -> None:
    """From a red-team pass: a review note took "a\\x01b" as it was (a note is exported and sent to a PACS)."""
    study = factories.judged_study(alice, Label.PNEUMONIA)
    client.force_login(reviewer)
    url = reverse("diagnosis:study_review", args=[study.pk])
    refused = client.post(url, {"decision": "agree", "note": "a\x01b\x1b[31m"})
    assert refused.status_code == 400 and "Remove the control characters (U+0001, U+001B)" in refused.content.decode()
    assert not Review.objects.exists()
    assert client.post(url, {"decision": "agree", "note": "line one\r\n\tline two"}).status_code == 302
    assert Review.objects.get().note == "line one\n\tline two"
    api = factories.token_client(reviewer)
    answer = api.post(f"/api/v1/studies/{study.pk}/review/", {"decision": "agree", "note": "x\x7f"}, format="json")
    assert answer.status_code == 400 and "U+007F" in answer.json()["note"][0]
    upload = factories.token_client(alice).post(
        "/api/v1/studies/", {"images": [factories.upload_file()], "patient_ref": "P\x07"}, format="multipart"
    )
    assert upload.status_code == 400 and "U+0007" in upload.json()["patient_ref"][0]
