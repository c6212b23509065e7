"""What the pages show of a study: its status (first render and the polling endpoint share one shape and one
result template), and the model's intended population (one rule, read by the pages and the worklist)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, pgettext

from diagnosis.models import Label, Study
from diagnosis.refusal_words import reason_text
from diagnosis.site import card as model_card
from diagnosis.site.operating_points import operating_point_text
from diagnosis.study_details import describe
from diagnosis.viewing import FileKind

RESULT_TEMPLATE = "diagnosis/_result.html"
RESULT_MORE_TEMPLATE = "diagnosis/_result_more.html"


def page_query(request: HttpRequest) -> str:
    """The request's query string without its page number, for the pager's links."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def sort_links(request: HttpRequest) -> dict[str, dict[str, str]]:
    """For each sortable column: the link that sorts by it (descending first, then ascending) and the
    current direction for aria-sort."""
    current = request.GET.get("sort", "")
    out = {}
    for column in ("probability", "created", "patient"):
        query = request.GET.copy()
        query.pop("page", None)
        query["sort"] = column if current == f"-{column}" else f"-{column}"
        direction = "descending" if current == f"-{column}" else "ascending" if current == column else "none"
        out[column] = {"href": "?" + query.urlencode(), "aria": direction}
    return out


def worklist_query(request: HttpRequest) -> str:
    """The worklist's filter and order, carried to the study pages opened from it (for save & next)."""
    return urlencode({"from": "worklist", "wl": page_query(request)})


# Within this many points of the threshold, a call is borderline: the bar shades the band and the page says so.
BORDERLINE = 0.10


def is_borderline(probability: float, threshold: float) -> bool:
    """A call within BORDERLINE of its threshold: the one rule every page, list and export flags."""
    return abs(probability - threshold) < BORDERLINE


def percent(probability: float) -> str:
    """A probability in words: whole percent, never a false certainty ("< 1 %" and "> 99 %" at the ends)."""
    if probability < 0.01:
        return "< 1 %"
    if probability > 0.99:
        return "> 99 %"
    return f"{round(probability * 100)} %"


def decimal(value: float) -> str:
    """A figure rounded to one decimal in the active locale's format, without a trailing zero: "3.6", "4"; "3,6" in
    Vietnamese."""
    rounded = round(value, 1)
    return number_format(int(rounded)) if rounded == int(rounded) else number_format(rounded, decimal_pos=1)


def margin_text(probability: float, threshold: float) -> str:
    """How far the probability lies from the threshold, in percentage points: "3.6 points below", "at"."""
    points = round(abs(probability - threshold) * 100, 1)
    if points == 0:
        return pgettext("the probability lies ... the decision threshold", "at")
    if probability > threshold:
        return _("%(points)s points above") % {"points": decimal(points)}
    return _("%(points)s points below") % {"points": decimal(points)}


def relation_text(probability: float, threshold: float) -> str:
    """The margin in a phrase: "3.6 points below the decision threshold 69.6 %"."""
    return _("%(margin)s the decision threshold %(threshold)s") % {
        "margin": margin_text(probability, threshold),
        "threshold": threshold_text(threshold),
    }


def threshold_text(threshold: float) -> str:
    """The threshold in percent, one decimal where it has one: "69.6 %", "50 %"."""
    return f"{decimal(threshold * 100)} %"


def probability_scale(probability: float, threshold: float) -> dict[str, Any]:
    """The probability against the threshold on one 0-100 scale, for the result bar (positions in %)."""
    return {
        "probability_text": percent(probability),
        "margin_text": margin_text(probability, threshold),
        "threshold_text": threshold_text(threshold),
        "relation_text": relation_text(probability, threshold),
        "probability_pos": round(probability * 100, 1),
        "threshold_pos": round(threshold * 100, 1),
        "band_from": round(max(threshold - BORDERLINE, 0.0) * 100, 1),
        "band_width": round((min(threshold + BORDERLINE, 1.0) - max(threshold - BORDERLINE, 0.0)) * 100, 1),
        "borderline": is_borderline(probability, threshold),
    }


def file_url(study: Study, kind: FileKind) -> str:
    return reverse("diagnosis:study_file", kwargs={"study_id": study.pk, "kind": kind.value})


def status_payload(study: Study) -> dict[str, Any]:
    job = study.job
    result = getattr(study, "result", None)
    payload: dict[str, Any] = {
        "id": str(study.pk),
        "status": job.status,
        "final": job.is_final,
        "reason": reason_text(job.reason),
        "attempts": job.attempts,
        "created": timezone.localtime(study.created).isoformat(),
        "processing_ms": job.processing_ms,
        "preview_url": file_url(study, FileKind.PREVIEW),
        "image_url": file_url(study, FileKind.IMAGE),
        "result": None,
    }
    if result is not None:
        payload["result"] = {
            "label": result.label,
            "label_display": result.get_label_display(),
            "probability": result.probability,
            "threshold": result.threshold,
            "model_version": result.model_version,
            "inference_ms": result.inference_ms,
            "site_validated": result.operating_point_id is not None,
            "operating_point_text": operating_point_text(result),
            "decisions": decisions(result.label),
            "heatmap_url": file_url(study, FileKind.HEATMAP),
            "overlay_url": file_url(study, FileKind.OVERLAY),
            **probability_scale(result.probability, result.threshold),
        }
    # The page's result block, rendered by the same template as the first render: the polling script only
    # swaps it in, so the result is laid out in one place.
    payload["result_html"] = render_to_string(RESULT_TEMPLATE, {"status": payload})
    payload["result_more_html"] = render_to_string(RESULT_MORE_TEMPLATE, {"status": payload})
    return payload


def decisions(model_label: str) -> dict[str, str]:
    """A reviewer's two choices on a call, each naming the final label it records ("Disagree → Normal")."""
    return {
        "agree": _("Agree → %(label)s") % {"label": Label(model_label).label},
        "disagree": _("Disagree → %(label)s") % {"label": Label.other(model_label).label},
    }


def upload_entry(study: Study) -> dict[str, str]:
    """A study just created by an upload, as the upload page's live batch view lists it, with the details it got."""
    return {
        "id": str(study.pk),
        "name": study.original_name,
        "details": describe(study),
        "url": reverse("diagnosis:study", args=[study.pk]),
        "status_url": reverse("diagnosis:study_status", args=[study.pk]),
        "thumbnail_url": file_url(study, FileKind.THUMBNAIL),
    }


@dataclass(frozen=True)
class Population:
    """Who the model was trained on (ages in whole years, inclusive)."""

    min_age_years: int
    max_age_years: int
    description: str

    def excludes(self, age_years: int | None) -> bool:
        """The rule: a known age outside [min, max]. An unknown age is not warned about.
        (The upload page's script repeats only the comparison, with these bounds, to warn as the user types.)"""
        return age_years is not None and not self.min_age_years <= age_years <= self.max_age_years


@lru_cache(maxsize=1)
def _card_population() -> Population:
    """From the shipped model card (plain JSON: the web process never loads TensorFlow), as the card words it."""
    pop = model_card.card().population
    return Population(int(pop["min_age_years"]), int(pop["max_age_years"]), str(pop["description"]))


def intended_population() -> Population:
    """The model card's population, its description in the active language (the pages print it)."""
    pop = _card_population()
    return replace(pop, description=population_text(pop.description))


def population_warning(age_years: int | None) -> str:
    """A visible warning when the patient is outside the model's intended population; "" when inside or unknown."""
    pop = _card_population()
    if not pop.excludes(age_years):
        return ""
    return _(
        "Outside the model's intended population: the patient is %(age)s years old, the model was trained on "
        "%(population)s. Its output may be unreliable; rely on your own reading."
    ) % {"age": age_years, "population": population_text(pop.description)}


def population_text(description: str) -> str:
    """The model card's population in the active language: the shipped card's description is a known sentence
    (translated in the catalog); another card's is shown as written."""
    return _(description) if description == SHIPPED_POPULATION else description


# The shipped card's population (worker.ml.spec's default), marked for the catalog.
SHIPPED_POPULATION = gettext_noop(
    "frontal chest radiographs of children aged 1 to 5 years (Guangzhou Women and Children's Medical Center, "
    "Kermany et al. 2018)"
)
