import pytest
from django.urls import reverse

from diagnosis import audit
from diagnosis.models import AuditAction, AuditEvent

pytestmark = pytest.mark.django_db


def test_the_superuser_manages_clinics_and_reads_but_cannot_edit_the_audit_trail(admin_client, alice) -> None:
    event = audit.record(alice, AuditAction.LOGIN)
    for name in (
        "diagnosis_clinic_changelist",
        "auth_user_changelist",
        "diagnosis_auditevent_changelist",
        "diagnosis_reviewsend_changelist",
    ):
        assert admin_client.get(reverse(f"admin:{name}")).status_code == 200
    assert admin_client.get(reverse("admin:auth_user_change", args=[alice.pk])).status_code == 200
    assert admin_client.get(reverse("admin:diagnosis_auditevent_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:diagnosis_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code
        == 403
    )


def test_a_superuser_without_a_clinic_sees_no_clinic_data(admin_client, alice) -> None:
    assert admin_client.get(reverse("diagnosis:worklist")).status_code == 403


def test_a_role_change_in_django_admin_reaches_the_clinics_audit_trail(admin_client, alice) -> None:
    m = alice.membership
    form = {
        "username": "alice",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "membership-TOTAL_FORMS": "1",
        "membership-INITIAL_FORMS": "1",
        "membership-MIN_NUM_FORMS": "0",
        "membership-MAX_NUM_FORMS": "1",
        "membership-0-id": m.pk,
        "membership-0-user": alice.pk,
        "membership-0-clinic": m.clinic_id,
        "membership-0-role": "reviewer",
    }
    response = admin_client.post(reverse("admin:auth_user_change", args=[alice.pk]), form)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    event = AuditEvent.objects.get(action=AuditAction.PERMISSION_CHANGE)
    assert event.clinic == m.clinic and event.username == "admin"
    assert (event.detail["from"]["role"], event.detail["to"]["role"]) == ("clinician", "reviewer")


def test_reviews_are_read_only_in_django_admin(admin_client, alice) -> None:
    """Issue 15 §2.4: a review edited in admin changed a clinical record without an audit row."""
    from diagnosis import reviews
    from diagnosis.models import Review, Role
    from tests import factories

    reviewer = factories.make_member("rev", alice.membership.clinic, Role.REVIEWER)
    review = reviews.review_study(reviewer, factories.judged_study(alice), agrees=True, note="fine")
    change = reverse("admin:diagnosis_review_change", args=[review.pk])
    assert admin_client.get(reverse("admin:diagnosis_review_changelist")).status_code == 200
    admin_client.post(change, {"study": review.study_id, "reviewer": reviewer.pk, "agrees": "", "final_label": "NORMAL",
                               "note": "edited in admin"})  # fmt: skip
    assert (
        admin_client.post(reverse("admin:diagnosis_review_delete", args=[review.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert admin_client.get(reverse("admin:diagnosis_review_add")).status_code == 403
    assert Review.objects.get(pk=review.pk).note == "fine"
