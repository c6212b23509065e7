"""The task body, called in this process with the real shipped model (the real worker is in tests/integration)."""

import numpy as np
import pytest
from django.core.files.base import ContentFile

from diagnosis import intake
from diagnosis.models import InferenceJob, JobStatus
from diagnosis.tasks import run_inference
from tests import images
from tests.factories import upload_file
from tests.needs import need_training_images

pytestmark = pytest.mark.django_db


def test_a_study_goes_to_done_with_a_result(alice) -> None:
    need_training_images()
    study = intake.submit_files(alice, [upload_file("real.jpeg", images.real_radiograph("PNEUMONIA"))]).studies[0]
    assert run_inference(study.job.pk) == "done"
    study.refresh_from_db()
    job, result = InferenceJob.objects.get(study=study), study.result
    assert job.status == JobStatus.DONE and job.attempts == 1 and job.processing_ms is not None
    assert result.label in ("NORMAL", "PNEUMONIA") and 0.0 <= result.probability <= 1.0
    assert result.label == ("PNEUMONIA" if result.probability >= result.threshold else "NORMAL")
    assert result.heatmap.read()[:4] == b"\x89PNG" and result.overlay.read()[:2] == b"\xff\xd8"
    # Running the same job again (a redelivered message) does nothing.
    assert run_inference(study.job.pk) == "skipped: not queued"


def test_a_file_corrupted_after_upload_is_rejected_not_crashed(alice) -> None:
    """Its working copy spoilt, the worker reads the original (see test_batching for each alone); that is spoilt too."""
    study = intake.submit_files(alice, [upload_file()]).studies[0]
    for field, spoilt in ((study.model_copy, b"P5\n"), (study.image, images.png()[:300])):
        name = str(field.name)
        field.storage.delete(name)
        field.storage.save(name, ContentFile(spoilt))
    assert run_inference(study.job.pk) == "rejected"
    job = InferenceJob.objects.get(study=study)
    assert job.status == JobStatus.REJECTED and "truncated or corrupt" in job.reason


def test_a_photo_is_rejected_as_not_a_radiograph(alice) -> None:
    rgb = np.zeros((300, 300, 3), np.uint8)
    rgb[..., 1] = np.linspace(0, 255, 300, dtype=np.uint8)[None, :]
    rgb[..., 0] = 200
    study = intake.submit_files(alice, [upload_file("holiday.png", images.encode(rgb))]).studies[0]
    assert run_inference(study.job.pk) == "rejected"
    job = InferenceJob.objects.get(study=study)
    assert "not a chest X-ray" in job.reason or "colour photograph" in job.reason
    assert not hasattr(study, "result") or study.result is None


def test_the_inference_task_is_limited_by_the_batch_time_limit() -> None:
    from django.conf import settings

    assert run_inference.time_limit == settings.INFERENCE_TASK_TIME_LIMIT
    assert run_inference.soft_time_limit == settings.INFERENCE_TASK_TIME_LIMIT - 5
    per_batch = settings.INFERENCE_TIME_LIMIT + 3 * (settings.INFERENCE_BATCH_SIZE - 1)
    limit = settings.INFERENCE_TASK_TIME_LIMIT
    assert limit == per_batch + settings.INFERENCE_DRAIN_SECONDS
