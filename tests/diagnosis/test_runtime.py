"""The inference runtime (INFERENCE_RUNTIME, issue 31): recorded on each result and shown by the API, reported by the
workers' health check (`celery inspect model`), and a value other than litert or tensorflow refused at start."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery.worker.control import Panel

from diagnosis import intake, predictor
from diagnosis.models import Study
from tests import factories
from tests.factories import upload_file
from worker.ml.spec import IntegrityError, ModelSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_a_result_records_the_runtime_that_computed_it_and_the_api_shows_it(alice: Any) -> None:
    study = intake.submit_files(alice, [upload_file("chest.png")]).studies[0]
    factories.judge(study, "PNEUMONIA", 0.9, runtime="litert")
    assert Study.objects.get(pk=study.pk).result.runtime == "litert"
    body = factories.token_client(alice).get(f"/api/v1/studies/{study.pk}/").json()
    assert body["runtime"] == "litert"
    queued = intake.submit_files(alice, [upload_file("other.png")]).studies[0]
    assert factories.token_client(alice).get(f"/api/v1/studies/{queued.pk}/").json()["runtime"] is None


def test_the_health_check_reports_the_runtime_and_checks_its_file(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(predictor, "_loaded", predictor._Loaded())  # as in a process that loaded no model yet
    settings.INFERENCE_RUNTIME = "litert"
    report = Panel.data["model"](None)  # what `celery -A xrayweb inspect model` asks a worker
    assert report == {
        "runtime": "litert",
        "model_version": ModelSpec.load().version,
        "model_file": "model.tflite",
        "loaded_runtime": None,  # this process holds no model (a Celery worker's parent neither)
    }
    settings.INFERENCE_RUNTIME = "tensorflow"
    assert predictor.health()["model_file"] == "model.keras"
    folder = tmp_path / "model"
    shutil.copytree(ModelSpec.load().directory, folder)
    (folder / "model.tflite").write_bytes(b"not the converted model")
    settings.MODEL_DIR = folder
    settings.INFERENCE_RUNTIME = "litert"
    with pytest.raises(IntegrityError):
        predictor.health()


def test_the_runtime_setting_defaults_to_litert_and_refuses_others() -> None:
    probe = "from django.conf import settings; print(settings.INFERENCE_RUNTIME)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "xrayweb.settings", "DJANGO_SECRET_KEY": "k"}
    env.pop("INFERENCE_RUNTIME", None)
    run = [sys.executable, "-c", f"import django; django.setup(); {probe}"]
    assert subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True).stdout.strip() == "litert"
    bad = subprocess.run(run, cwd=ROOT, env={**env, "INFERENCE_RUNTIME": "onnx"}, capture_output=True, text=True)
    assert bad.returncode != 0 and "INFERENCE_RUNTIME='onnx' is not litert or tensorflow" in bad.stderr


def test_the_compose_workers_health_check_asks_for_the_model_and_the_gpu_worker_runs_keras() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("inference", "maintenance"):
        assert "celery -A xrayweb inspect model --json " in compose["services"][name]["healthcheck"]["test"][1]
        assert compose["services"][name]["healthcheck"]["test"][1].endswith("| grep -q runtime")
    assert compose["services"]["inference"]["environment"]["INFERENCE_RUNTIME"] == "tensorflow"  # Keras on JAX
    assert "KERAS_BACKEND=jax INFERENCE_RUNTIME=tensorflow" in (ROOT / "Dockerfile.gpu").read_text()  # any deployment
