"""The JSON shape of a study's status, shared by the page (first render) and the polling endpoint."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from diagnosis.models import Study
from worker.ml.spec import ModelSpec


def page_query(request: HttpRequest) -> str:
    """The request's query string without its page number, for the pager's links."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def file_url(study: Study, kind: str) -> str:
    return reverse("diagnosis:study_file", kwargs={"study_id": study.pk, "kind": kind})


def status_payload(study: Study) -> dict[str, Any]:
    job = study.job
    result = getattr(study, "result", None)
    payload: dict[str, Any] = {
        "id": str(study.pk),
        "status": job.status,
        "final": job.is_final,
        "reason": job.reason,
        "attempts": job.attempts,
        "created": study.created.isoformat(),
        "processing_ms": job.processing_ms,
        "preview_url": file_url(study, "preview"),
        "image_url": file_url(study, "image"),
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
            "heatmap_url": file_url(study, "heatmap"),
            "overlay_url": file_url(study, "overlay"),
        }
    return payload


@lru_cache(maxsize=1)
def intended_population() -> dict[str, Any]:
    """From the shipped model card (plain JSON: the web process never loads TensorFlow)."""
    return ModelSpec.load(settings.MODEL_DIR).population


def population_warning(age_years: int | None) -> str:
    """A visible warning when the patient is outside the model's intended population; "" when inside or unknown."""
    if age_years is None:
        return ""
    pop = intended_population()
    low, high = pop["min_age_years"], pop["max_age_years"]
    if low <= age_years <= high:
        return ""
    return (
        f"Outside the model's intended population: the patient is {age_years} years old, the model was trained "
        f"on {pop['description']}. Its output may be unreliable; rely on your own reading."
    )
