"""HTML pages and their JSON status endpoint: parse, scope to the user, call one service or selector."""

from __future__ import annotations

import uuid
from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from diagnosis import selectors, services
from diagnosis.forms import HistoryFilterForm, UploadForm
from diagnosis.models import Study
from diagnosis.presenters import status_payload

FILE_KINDS = {"image", "preview", "thumbnail", "heatmap", "overlay"}


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    if form.is_bound and form.is_valid():
        submission = services.submit_files(cast(User, request.user), form.cleaned_data["images"])
        for error in submission.errors:
            form.add_error("images", str(error))
        if submission.studies and not submission.errors:
            if len(submission.studies) == 1:
                return redirect("diagnosis:study", study_id=submission.studies[0].pk)
            messages.success(request, f"{len(submission.studies)} studies queued.")
            return redirect("diagnosis:history")
        if submission.studies:
            messages.success(request, f"{len(submission.studies)} studies queued; the files below were refused.")
        return render(request, "diagnosis/upload.html", {"form": form, "queued": submission.studies}, status=400)
    return render(request, "diagnosis/upload.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@require_GET
def study_detail(request: HttpRequest, study_id: uuid.UUID) -> HttpResponse:
    study = selectors.get_study(request.user, study_id)
    return render(request, "diagnosis/study.html", {"study": study, "status": status_payload(study)})


@login_required
@require_GET
def study_status(request: HttpRequest, study_id: uuid.UUID) -> JsonResponse:
    return JsonResponse(status_payload(selectors.get_study(request.user, study_id)))


@login_required
@require_GET
def study_file(request: HttpRequest, study_id: uuid.UUID, kind: str) -> FileResponse:
    return open_study_file(selectors.get_study(request.user, study_id), kind)


def open_study_file(study: Study, kind: str) -> FileResponse:
    """A file of a study the caller may see (the caller checked ownership), streamed from storage."""
    field = _file_field(study, kind)
    if not field:
        raise Http404("This file does not exist (yet).")
    # FileResponse encodes the user's file name safely (quotes, newlines, non-ASCII) in Content-Disposition.
    name = study.original_name if kind == "image" else f"{kind}.{'png' if kind in ('heatmap', 'overlay') else 'jpg'}"
    response = FileResponse(field.open("rb"), content_type=_content_type(study, kind), filename=name)
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _file_field(study: Study, kind: str) -> FieldFile | None:
    if kind not in FILE_KINDS:
        raise Http404("Unknown file.")
    if kind in ("heatmap", "overlay"):
        result = getattr(study, "result", None)
        return getattr(result, kind) if result else None
    return getattr(study, kind)


def _content_type(study: Study, kind: str) -> str:
    return {"image": study.content_type, "heatmap": "image/png", "overlay": "image/png"}.get(kind, "image/jpeg")


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    studies = selectors.history(request.user, filters.get("label", ""), filters.get("status", ""))
    page = Paginator(studies, 20).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "diagnosis/history.html", {"form": form, "page": page, "query": query.urlencode()})


def home(request: HttpRequest) -> HttpResponse:
    return redirect(reverse("diagnosis:upload"))
