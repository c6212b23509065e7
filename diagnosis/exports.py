"""CSV exports (the audit trail, History and the Worklist): each one is recorded in the audit trail before it runs,
so it appears in what it exports, and every cell is written so that a spreadsheet never runs it as a formula."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import pgettext_lazy

from diagnosis import audit
from diagnosis.audit import Origin
from diagnosis.models import AuditAction, Result, Review, Study

Borderline = Callable[[float, float], bool]

# The header is a stable interface (scripts read these names): a column is added, never renamed lightly.
# probability_of_pneumonia is the model's calibrated P(pneumonia), 0-1, whatever the label: "NORMAL, 0.66" is a
# normal call with a 66 % probability of pneumonia, not 66 % confidence in normal. borderline: yes near the
# threshold by the pages' one rule (presenters.is_borderline, which the interface passes in). reason: why a study
# was rejected or failed. review is blank without a result (nothing to review), else agrees, disagrees or not
# reviewed.
STUDY_COLUMNS = [
    "study_id",
    "uploaded",
    "uploader",
    "patient_ref",
    "age_years",
    "sex",
    "projection",
    "clinical_note",
    "file_name",
    "status",
    "reason",
    "model_label",
    "probability_of_pneumonia",
    "threshold",
    "borderline",
    "model_version",
    "review",
    "final_label",
    "reviewer",
    "reviewed",
    "review_note",
]


# The header in the active language (the English names above where no translation is active); the cells keep their
# codes (status, labels, yes/no), which scripts compare.
COLUMN_NAMES = {
    "study_id": pgettext_lazy("CSV column", "study_id"),
    "uploaded": pgettext_lazy("CSV column", "uploaded"),
    "uploader": pgettext_lazy("CSV column", "uploader"),
    "patient_ref": pgettext_lazy("CSV column", "patient_ref"),
    "age_years": pgettext_lazy("CSV column", "age_years"),
    "sex": pgettext_lazy("CSV column", "sex"),
    "projection": pgettext_lazy("CSV column", "projection"),
    "clinical_note": pgettext_lazy("CSV column", "clinical_note"),
    "file_name": pgettext_lazy("CSV column", "file_name"),
    "status": pgettext_lazy("CSV column", "status"),
    "reason": pgettext_lazy("CSV column", "reason"),
    "model_label": pgettext_lazy("CSV column", "model_label"),
    "probability_of_pneumonia": pgettext_lazy("CSV column", "probability_of_pneumonia"),
    "threshold": pgettext_lazy("CSV column", "threshold"),
    "borderline": pgettext_lazy("CSV column", "borderline"),
    "model_version": pgettext_lazy("CSV column", "model_version"),
    "review": pgettext_lazy("CSV column", "review"),
    "final_label": pgettext_lazy("CSV column", "final_label"),
    "reviewer": pgettext_lazy("CSV column", "reviewer"),
    "reviewed": pgettext_lazy("CSV column", "reviewed"),
    "review_note": pgettext_lazy("CSV column", "review_note"),
}


def header() -> list[str]:
    return [str(COLUMN_NAMES[c]) for c in STUDY_COLUMNS]


def study_rows(studies: Iterable[Study], *, borderline: Borderline) -> Iterator[str]:
    """One CSV line per study: its details, the model's result and the review (blank where there is none).
    borderline(probability, threshold): whether a call is flagged borderline."""
    return audit.csv_stream(header(), (_study_row(s, borderline) for s in studies))


def _study_row(s: Study, borderline: Borderline) -> list[object]:
    result, review = getattr(s, "result", None), getattr(s, "review", None)
    return [
        s.pk,
        timezone.localtime(s.created).isoformat(),
        s.owner.get_username(),
        s.patient_ref,
        s.age_years,
        s.sex,
        s.projection,
        s.clinical_note,
        s.original_name,
        s.job.status,
        s.job.reason,
        *(_result_cells(result, borderline) if result else [""] * 5),
        _review_state(result is not None, review),
        review.final_label if review else "",
        review.reviewer.get_username() if review else "",
        timezone.localtime(review.updated).isoformat() if review else "",
        review.note if review else "",
    ]


def _result_cells(result: Result, borderline: Borderline) -> list[object]:
    """model_label, probability_of_pneumonia, threshold, borderline, model_version."""
    flag = "yes" if borderline(result.probability, result.threshold) else "no"
    return [result.label, f"{result.probability:.4f}", f"{result.threshold:.4f}", flag, result.model_version]


def _review_state(judged: bool, review: Review | None) -> str:
    if review is not None:
        return "agrees" if review.agrees else "disagrees"
    return "not reviewed" if judged else ""


def csv_response(request: HttpRequest, what: str, lines: Iterator[str]) -> StreamingHttpResponse:
    """Record the export (what, and the filters it was asked with), then stream `lines` as an attachment."""
    detail = {"what": f"{what}_csv", "filters": {k: v for k, v in request.GET.items() if v}}
    audit.record(request.user, AuditAction.EXPORT, detail=detail, origin=Origin.of(request))
    # UTF-8 with a byte-order mark: without it Excel, which most clinics open these in, reads them as its local
    # code page, and a note's accents or a name's letters come out garbled.
    response = StreamingHttpResponse(itertools.chain(["\ufeff"], lines), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{what}-{stamp}.csv"'
    return response
