"""Studies in a known state, made through the real services (storage, job, audit) without a worker."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User

from diagnosis import services
from diagnosis.models import Study
from diagnosis.services import StudyDetails
from diagnosis.validation import validate_upload
from tests import images


@dataclass
class Prediction:
    label: str
    probability: float
    threshold: float = 0.824
    model_version: str = "test-model"
    heatmap_png: bytes = images.png(32, 32)
    overlay_png: bytes = images.png(32, 32)
    inference_ms: int = 12


def study(owner: User, name: str = "chest.png", **details: Any) -> Study:
    upload = validate_upload(name, None, io.BytesIO(images.png()))
    return services.create_study(owner, upload, details=StudyDetails(**details))


def judged_study(owner: User, label: str = "PNEUMONIA", probability: float = 0.9, **details: Any) -> Study:
    """A study the model has judged (job done, result with heatmap and overlay files)."""
    s = study(owner, **details)
    job = services.claim_job(s.job.pk)
    assert job is not None
    services.record_result(job, Prediction(label=label, probability=probability))
    return Study.objects.select_related("job", "result").get(pk=s.pk)
