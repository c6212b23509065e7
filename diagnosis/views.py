"""Study pages and their JSON status endpoint: parse, check the role, call one service or selector."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnosis import exports, intake, pacs, reviews, selectors, viewing
from diagnosis.access import has_role, role_required
from diagnosis.audit import Origin
from diagnosis.filters import HistoryPageFilter, WorklistFilter, worklist_params
from diagnosis.forms import ReviewForm, UploadForm, seen
from diagnosis.models import Role, Study
from diagnosis.presenters import (
    intended_population,
    is_borderline,
    page_query,
    population_warning,
    sort_links,
    status_payload,
    upload_entry,
)
from diagnosis.study_details import describe


@role_required()
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    """The upload page. Its script sends one file per request (for per-file progress) and asks for JSON: each
    file's fate, a study or a named error. Without the script, the form posts all files and the page lists them."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    context = {"form": form, "population": intended_population(), "max_files": settings.MAX_FILES_PER_UPLOAD}
    if not (form.is_bound and form.is_valid()):
        if wants_json:
            return JsonResponse({"studies": [], "errors": _form_errors(form)}, status=400)
        return render(request, "diagnosis/upload.html", context, status=400 if form.errors else 200)
    user, origin = cast(User, request.user), Origin.of(request)
    submission = intake.submit_files(user, form.cleaned_data["images"], details=form.details(), origin=origin)
    if wants_json:
        body = {"studies": [upload_entry(s) for s in submission.studies], "details": describe(form.details()),
                "errors": [{"file": e.file_name, "message": e.message} for e in submission.errors]}  # fmt: skip
        return JsonResponse(body, status=200 if submission.studies else 400)
    if submission.studies and not submission.errors:
        if len(submission.studies) == 1:
            return redirect("diagnosis:study", study_id=submission.studies[0].pk)
        messages.success(request, _("%(count)s studies queued.") % {"count": len(submission.studies)})
        return redirect("diagnosis:history")
    # The page lists each file's fate and the details each study got; the form is the next upload's: cleared,
    # unless the user chose to keep the details (the page then says which it kept).
    kept = describe(form.details()) if form.cleaned_data["keep_details"] else ""
    context = {**context, "form": form.next_form(), "kept": kept, "sent": True,
               "queued": [(s, describe(s)) for s in submission.studies], "refused": submission.errors}  # fmt: skip
    # some queued and some refused: the request did its work (the page says which file is which); none queued: 400
    return render(request, "diagnosis/upload.html", context, status=200 if submission.studies else 400)


def _form_errors(form: UploadForm) -> list[dict[str, str]]:
    return [{"file": "", "message": str(m)} for messages_ in form.errors.values() for m in messages_]


def _study_context(request: HttpRequest, study: Study) -> dict[str, object]:
    status = status_payload(study)
    return {
        "study": study,
        "status": status,
        "review": getattr(study, "review", None),
        "warning": population_warning(study.age_years),
        # A reviewer gets the review form with the result, or hidden until it comes (the page swaps it in, no reload).
        "can_review": has_role(request.user, Role.REVIEWER) and (status["result"] is not None or not status["final"]),
        "can_resend": has_role(request.user, Role.ADMIN),
        "priors": selectors.priors(request.user, study),
    }


@dataclass(frozen=True)
class WorklistPlace:
    """Where a study page sits in the worklist it was opened from (its filter, kept in `wl`)."""

    query: str
    previous: uuid.UUID | None
    next: uuid.UUID | None

    @classmethod
    def of(cls, request: HttpRequest, params: QueryDict, study: Study) -> WorklistPlace | None:
        if params.get("from") != "worklist":
            return None
        query = params.get("wl", "")
        filterset = WorklistFilter(worklist_params(QueryDict(query)), queryset=selectors.worklist(request.user))
        ids = list(filterset.qs.values_list("pk", flat=True)) if filterset.is_valid() else []
        return cls(query, *selectors.neighbours(ids, study.pk))

    def study_url(self, study_id: uuid.UUID) -> str:
        return reverse("diagnosis:study", args=[study_id]) + "?" + urlencode({"from": "worklist", "wl": self.query})

    @property
    def list_url(self) -> str:
        return reverse("diagnosis:worklist") + (f"?{self.query}" if self.query else "")


def _compared(request: HttpRequest, study: Study) -> Study | None:
    """A prior opened side by side (?compare=<id>): only one of the same clinic, else nothing."""
    other = request.GET.get("compare")
    try:
        return selectors.get_study(request.user, other) if other else None
    except Http404:
        return None


@role_required()
@require_GET
def study_detail(request: HttpRequest, study_id: uuid.UUID) -> HttpResponse:
    study = viewing.view_study(request.user, study_id, Origin.of(request), via="page")
    review = getattr(study, "review", None)
    result = getattr(study, "result", None)
    form = ReviewForm.revising(review, result.label if result else None)
    compare = _compared(request, study)
    context = {
        **_study_context(request, study),
        "form": form,
        "place": WorklistPlace.of(request, request.GET, study),
        "compare": compare,
        "compare_status": status_payload(compare) if compare else None,
        "compare_relation": ("Later" if compare.created > study.created else "Earlier") if compare else "",
    }
    return render(request, "diagnosis/study.html", context)


@role_required()
@require_GET
def study_report(request: HttpRequest, study_id: uuid.UUID) -> HttpResponse:
    study = viewing.view_study(request.user, study_id, Origin.of(request), via="report")
    return render(request, "diagnosis/report.html", _study_context(request, study))


@role_required(Role.REVIEWER)
@require_POST
def study_review(request: HttpRequest, study_id: uuid.UUID) -> HttpResponse:
    study = selectors.get_study(request.user, study_id)
    result = getattr(study, "result", None)
    form = ReviewForm(request.POST, model_label=result.label if result else None)
    place = WorklistPlace.of(request, request.POST, study)  # before saving: the study may leave the list
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        try:
            agrees = data["decision"] == "agree"
            user = cast(User, request.user)
            reviews.review_study(
                user, study, agrees=agrees, note=data["note"], origin=Origin.of(request), based_on=data["based_on"]
            )
        except reviews.ReviewConflict as exc:  # show the colleague's reading; a second save replaces it
            study, status = selectors.get_study(request.user, study_id), 409
            form = ReviewForm({**request.POST.dict(), "based_on": seen(exc.current)}, model_label=form.model_label)
            form.add_error(None, str(exc))
        except reviews.ReviewError as exc:
            form.add_error(None, str(exc))
    if form.errors:
        context = {**_study_context(request, study), "form": form, "place": place}
        return render(request, "diagnosis/study.html", context, status=status)
    if place is None:
        messages.success(request, _("Review saved."))
        return redirect("diagnosis:study", study_id=study.pk)
    if request.POST.get("action") != "next":
        messages.success(request, _("Review saved."))
        return redirect(place.study_url(study.pk))
    if place.next is None:
        messages.success(request, _("Review saved. That was the last study of this worklist."))
        return redirect(place.list_url)
    messages.success(request, _("Review of %(name)s saved.") % {"name": study.original_name})
    return redirect(place.study_url(place.next))


@role_required(Role.ADMIN)
@require_POST
def study_resend(request: HttpRequest, study_id: uuid.UUID) -> HttpResponse:
    """A clinic admin sends the study's failed results (and readings) to the PACS again."""
    study = selectors.get_study(request.user, study_id)
    if pacs.retry(study.pk):
        messages.success(request, _("Sending the results to the PACS again."))
    else:
        messages.info(request, _("Nothing to send again: no send of this study has failed."))
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
    filterset = HistoryPageFilter(request.GET, queryset=selectors.history(request.user))
    page = Paginator(filterset.qs, 20).get_page(request.GET.get("page"))
    context = {"form": filterset.form, "page": page, "query": page_query(request), "sorting": sort_links(request),
               "pending": any(not s.job.is_final for s in page)}  # fmt: skip
    return render(request, "diagnosis/history.html", context)


@role_required()
@require_GET
def history_export(request: HttpRequest) -> StreamingHttpResponse:
    """The user's own studies with the page's filters and order, every page of them, as CSV (audited)."""
    filterset = HistoryPageFilter(request.GET, queryset=selectors.history(request.user))
    rows = exports.study_rows(filterset.qs.iterator(), borderline=is_borderline)
    return exports.csv_response(request, "history", rows)


def home(request: HttpRequest) -> HttpResponse:
    """Where a login lands: reviewers and admins on the worklist, clinicians on the upload page."""
    return redirect(reverse("diagnosis:worklist" if has_role(request.user, Role.REVIEWER) else "diagnosis:upload"))
