"""Django admin for the platform superuser: clinics, memberships, studies; the audit trail read-only."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.http import HttpRequest

from diagnosis import audit
from diagnosis.audit import Origin
from diagnosis.models import (
    AuditAction,
    AuditEvent,
    Clinic,
    DicomPeer,
    InferenceJob,
    Membership,
    OperatingPoint,
    Result,
    ResultSend,
    Review,
    ReviewSend,
    SiteAlert,
    SiteSettings,
    Study,
)


class JobInline(admin.StackedInline):
    model = InferenceJob
    extra = 0
    readonly_fields = ("status", "reason", "attempts", "enqueued_at", "started_at", "finished_at", "processing_ms")


class ResultInline(admin.StackedInline):
    model = Result
    extra = 0
    readonly_fields = ("label", "probability", "threshold", "model_version", "inference_ms", "created")
    exclude = ("heatmap", "overlay")


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("original_name", "clinic", "owner", "patient_ref", "created")
    list_filter = ("clinic", "created")
    search_fields = ("original_name", "sha256", "owner__username", "patient_ref")
    readonly_fields = ("id", "sha256", "size_bytes", "width", "height", "content_type", "chroma", "created")
    exclude = ("image", "preview", "thumbnail", "model_copy")
    inlines = (JobInline, ResultInline)


@admin.register(InferenceJob)
class InferenceJobAdmin(admin.ModelAdmin):
    list_display = ("id", "study", "status", "attempts", "enqueued_at", "finished_at", "processing_ms")
    list_filter = ("status",)


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "language", "time_zone", "created")
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name",)


class MembershipInline(admin.StackedInline):
    """A superuser gives a new clinic its first admin here; that admin invites everyone else."""

    model = Membership
    can_delete = False
    extra = 0


admin.site.unregister(User)


def access_of(user_id: int | None) -> dict[str, Any]:
    """What a user may do: compared before and after an admin edit to audit permission changes."""
    user = User.objects.filter(pk=user_id).select_related("membership__clinic").first() if user_id else None
    if user is None:
        return {}
    membership = getattr(user, "membership", None)
    return {
        "clinic": membership.clinic.slug if membership else None,
        "role": membership.role if membership else None,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
    }


@admin.register(User)
class UserWithClinicAdmin(UserAdmin):
    """Permission changes made here reach the audit trail of the user's clinic, like the clinic admin's."""

    inlines = (MembershipInline,)
    list_display = ("username", "email", "is_active", "is_staff", "membership")
    list_filter = ("membership__clinic", "membership__role", "is_active", "is_staff")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        request._access_before = access_of(obj.pk)  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        user = form.instance
        before, after = getattr(request, "_access_before", {}), access_of(user.pk)
        if before != after:
            membership = Membership.objects.filter(user=user).select_related("clinic").first()
            detail = {"change": "django admin", "user": user.username, "from": before, "to": after}
            clinic = membership.clinic if membership else None
            audit.record(
                request.user, AuditAction.PERMISSION_CHANGE, user, detail, origin=Origin.of(request), clinic=clinic
            )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Listed and readable in Django admin, never added, changed or deleted there."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    """Read-only: a review is a clinical record, written (and audited) only by reviewers in the clinic's pages."""

    list_display = ("study", "reviewer", "final_label", "agrees", "updated")
    list_filter = ("agrees", "final_label")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the trail is append-only, here as everywhere."""

    list_display = ("at", "clinic", "username", "action", "target_type", "target_id", "ip")
    list_filter = ("action", "clinic")
    search_fields = ("username", "target_id", "ip")


@admin.register(DicomPeer)
class DicomPeerAdmin(admin.ModelAdmin):
    """The PACSes allowed to send to the DICOM listener (by calling AE title) and where results go back."""

    list_display = ("ae_title", "clinic", "uploader", "send_ae_title", "send_host", "send_port", "active")
    list_filter = ("clinic", "active")
    search_fields = ("ae_title", "send_ae_title", "send_host")


@admin.register(ResultSend)
class ResultSendAdmin(admin.ModelAdmin):
    list_display = ("study", "status", "attempts", "destination", "updated", "sent_at")
    list_filter = ("status",)
    readonly_fields = ("study", "series_uid", "sr_uid", "sc_uid")


@admin.register(ReviewSend)
class ReviewSendAdmin(admin.ModelAdmin):
    """Readings sent back to the PACS as verified SRs."""

    list_display = ("study", "final_label", "agrees", "reviewer_name", "status", "attempts", "updated", "sent_at")
    list_filter = ("status",)
    readonly_fields = ("study", "final_label", "agrees", "reviewer_name", "sr_uid")


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    """A clinic's target sensitivity and verification sampling rates (empty: the installation's defaults)."""

    list_display = ("clinic", "target_sensitivity", "verification_rate_normal", "verification_rate_pneumonia")


@admin.register(OperatingPoint)
class OperatingPointAdmin(ReadOnlyAdmin):
    """Adopted and reverted by clinic admins on the site page or the API; here read only."""

    list_display = ("clinic", "version", "model_version", "threshold", "target_sensitivity", "adopted_at", "retired_at")
    list_filter = ("clinic", "model_version")


@admin.register(SiteAlert)
class SiteAlertAdmin(ReadOnlyAdmin):
    list_display = ("clinic", "day", "kind", "level", "value", "limit")
    list_filter = ("clinic", "level", "kind")
