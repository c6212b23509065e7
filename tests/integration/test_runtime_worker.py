"""A real Celery worker on each runtime (issue 31): the result records the runtime that computed it, and a worker on
LiteRT (the default) has no TensorFlow library mapped in any of its processes; one on TensorFlow has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest

from diagnosis import intake
from diagnosis.models import InferenceJob, JobStatus, Study
from tests import images
from tests.factories import upload_file
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def _mapped(pid: int) -> str:
    """The shared objects mapped by the worker's process and its children (the pool child holds the model)."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return "".join(Path(f"/proc/{p.pid}/maps").read_text() for p in procs)


@pytest.mark.parametrize("runtime", ["litert", "tensorflow"])
def test_a_real_worker_records_its_runtime_and_litert_maps_no_tensorflow(alice, start_worker, runtime: str) -> None:
    if not images.SHARED_DATA.exists():
        pytest.skip(images.NO_DATA_REASON)
    extra: dict[str, Any] = {} if runtime == "litert" else {"INFERENCE_RUNTIME": runtime}
    worker = start_worker(**extra)
    study = intake.submit_files(alice, [upload_file("p.jpeg", images.real_radiograph("PNEUMONIA", 0))]).studies[0]
    done = lambda: InferenceJob.objects.get(pk=study.job.pk).status == JobStatus.DONE  # noqa: E731
    wait_for(done, 180, "the study judged", [worker.log])
    assert Study.objects.get(pk=study.pk).result.runtime == runtime
    mapped = _mapped(worker.proc.pid)
    assert ("_pywrap_tensorflow" in mapped) == (runtime == "tensorflow")
    assert ("ai_edge_litert" in mapped) == (runtime == "litert")
