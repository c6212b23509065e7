"""The JSON shape of a study's status, shared by the page (first render) and the polling endpoint."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from diagnosis.models import Study


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
