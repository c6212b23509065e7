"""Study pages and their JSON status endpoint: parse, check the role, call one service or selector."""

from __future__ import annotations

import uuid
from typing import cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnosis import intake, reviews, selectors, viewing
from diagnosis.access import has_role, role_required
from diagnosis.audit import Origin
from diagnosis.filters import HistoryFilter
from diagnosis.forms import ReviewForm, UploadForm
from diagnosis.models import Role, Study
from diagnosis.presenters import intended_population, page_query, population_warning, status_payload


@role_required()
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    context = {"form": form, "population": intended_population()}
    if form.is_bound and form.is_valid():
        user, origin = cast(User, request.user), Origin.of(request)
        submission = intake.submit_files(user, form.cleaned_data["images"], details=form.details(), origin=origin)
        for error in submission.errors:
            form.add_error("images", str(error))
        if submission.studies and not submission.errors:
            if len(submission.studies) == 1:
                return redirect("diagnosis:study", study_id=submission.studies[0].pk)
            messages.success(request, f"{len(submission.studies)} studies queued.")
            return redirect("diagnosis:history")
        if submission.studies:
            messages.success(request, f"{len(submission.studies)} studies queued; the files below were refused.")
        return render(request, "diagnosis/upload.html", {**context, "queued": submission.studies}, status=400)
    return render(request, "diagnosis/upload.html", context, status=400 if form.errors else 200)


def _study_context(request: HttpRequest, study: Study) -> dict[str, object]:
    return {
        "study": study,
        "status": status_payload(study),
        "review": getattr(study, "review", None),
        "warning": population_warning(study.age_years),
        "can_review": has_role(request.user, Role.REVIEWER),
    }


@role_required()
@require_GET
def study_detail(request: HttpRequest, study_id: uuid.UUID) -> HttpResponse:
    study = viewing.view_study(request.user, study_id, Origin.of(request), via="page")
    return render(request, "diagnosis/study.html", {**_study_context(request, study), "form": ReviewForm()})


@role_required()
@require_GET
def study_report(request: HttpRequest, study_id: uuid.UUID) -> HttpResponse:
    study = viewing.view_study(request.user, study_id, Origin.of(request), via="report")
    return render(request, "diagnosis/report.html", _study_context(request, study))


@role_required(Role.REVIEWER)
@require_POST
def study_review(request: HttpRequest, study_id: uuid.UUID) -> HttpResponse:
    study = selectors.get_study(request.user, study_id)
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            agrees = form.cleaned_data["decision"] == "agree"
            reviews.review_study(cast(User, request.user), study, agrees, form.cleaned_data["note"], Origin.of(request))
        except reviews.ReviewError as exc:
            form.add_error(None, str(exc))
    if form.errors:
        context = {**_study_context(request, study), "form": form}
        return render(request, "diagnosis/study.html", context, status=400)
    messages.success(request, "Review saved.")
    if request.POST.get("next") == "worklist":  # reviewing from the worklist goes back to it
        return redirect("diagnosis:worklist")
    return redirect("diagnosis:study", study_id=study.pk)


@role_required()
@require_GET
def study_status(request: HttpRequest, study_id: uuid.UUID) -> JsonResponse:
    # Polled every second by the study page: its view was already audited when the page loaded.
    return JsonResponse(status_payload(selectors.get_study(request.user, study_id)))


@role_required()
@require_GET
def study_file(request: HttpRequest, study_id: uuid.UUID, kind: str) -> FileResponse:
    return viewing.serve_file(request.user, study_id, kind, Origin.of(request))


@role_required()
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    filterset = HistoryFilter(request.GET, queryset=selectors.history(request.user))
    page = Paginator(filterset.qs, 20).get_page(request.GET.get("page"))
    context = {"form": filterset.form, "page": page, "query": page_query(request)}
    return render(request, "diagnosis/history.html", context)


def home(request: HttpRequest) -> HttpResponse:
    """Where a login lands: reviewers and admins on the worklist, clinicians on the upload page."""
    return redirect(reverse("diagnosis:worklist" if has_role(request.user, Role.REVIEWER) else "diagnosis:upload"))
