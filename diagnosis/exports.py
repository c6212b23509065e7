"""CSV exports (the audit trail, History and the Worklist): each one is recorded in the audit trail before it runs,
so it appears in what it exports, and every cell is written so that a spreadsheet never runs it as a formula."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from diagnosis import audit
from diagnosis.audit import Origin
from diagnosis.models import AuditAction, Study

STUDY_COLUMNS = [
    "study_id",
    "uploaded",
    "uploader",
    "patient_ref",
    "age_years",
    "sex",
    "projection",
    "file_name",
    "status",
    "model_label",
    "probability",
    "threshold",
    "model_version",
    "review",
    "final_label",
    "reviewer",
    "reviewed",
    "review_note",
]


def study_rows(studies: Iterable[Study]) -> Iterator[str]:
    """One CSV line per study: its details, the model's result and the review (blank where there is none)."""
    return audit.csv_stream(STUDY_COLUMNS, (_study_row(s) for s in studies))


def _study_row(s: Study) -> list[object]:
    result, review = getattr(s, "result", None), getattr(s, "review", None)
    return [
        s.pk,
        timezone.localtime(s.created).isoformat(),
        s.owner.get_username(),
        s.patient_ref,
        s.age_years,
        s.sex,
        s.projection,
        s.original_name,
        s.job.status,
        result.label if result else "",
        f"{result.probability:.4f}" if result else "",
        f"{result.threshold:.4f}" if result else "",
        result.model_version if result else "",
        ("agrees" if review.agrees else "disagrees") if review else "not reviewed",
        review.final_label if review else "",
        review.reviewer.get_username() if review else "",
        timezone.localtime(review.updated).isoformat() if review else "",
        review.note if review else "",
    ]


def csv_response(request: HttpRequest, what: str, lines: Iterator[str]) -> StreamingHttpResponse:
    """Record the export (what, and the filters it was asked with), then stream `lines` as an attachment."""
    detail = {"what": f"{what}_csv", "filters": {k: v for k, v in request.GET.items() if v}}
    audit.record(request.user, AuditAction.EXPORT, detail=detail, origin=Origin.of(request))
    # UTF-8 with a byte-order mark: without it Excel, which most clinics open these in, reads them as its local
    # code page, and a note's accents or a name's letters come out garbled.
    response = StreamingHttpResponse(itertools.chain(["\ufeff"], lines), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{what}-{stamp}.csv"'
    return response
