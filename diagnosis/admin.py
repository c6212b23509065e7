from django.contrib import admin

from diagnosis.models import InferenceJob, Result, Study


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
    list_display = ("original_name", "owner", "created", "width", "height")
    list_filter = ("created",)
    search_fields = ("original_name", "sha256", "owner__username")
    readonly_fields = ("id", "sha256", "size_bytes", "width", "height", "content_type", "created")
    exclude = ("image", "preview", "thumbnail")
    inlines = (JobInline, ResultInline)


@admin.register(InferenceJob)
class InferenceJobAdmin(admin.ModelAdmin):
    list_display = ("id", "study", "status", "attempts", "enqueued_at", "finished_at", "processing_ms")
    list_filter = ("status",)
