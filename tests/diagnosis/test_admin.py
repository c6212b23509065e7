import pytest
from django.urls import reverse

from diagnosis import audit
from diagnosis.models import AuditAction

pytestmark = pytest.mark.django_db


def test_the_superuser_manages_clinics_and_reads_but_cannot_edit_the_audit_trail(admin_client, alice) -> None:  # type: ignore[no-untyped-def]
    event = audit.record(alice, AuditAction.LOGIN)
    for name in ("diagnosis_clinic_changelist", "auth_user_changelist", "diagnosis_auditevent_changelist"):
        assert admin_client.get(reverse(f"admin:{name}")).status_code == 200
    assert admin_client.get(reverse("admin:auth_user_change", args=[alice.pk])).status_code == 200
    assert admin_client.get(reverse("admin:diagnosis_auditevent_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:diagnosis_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code
        == 403
    )


def test_a_superuser_without_a_clinic_sees_no_clinic_data(admin_client, alice) -> None:  # type: ignore[no-untyped-def]
    assert admin_client.get(reverse("diagnosis:worklist")).status_code == 403
