"""The worker process's one model, loaded on first use, on the engine INFERENCE_RUNTIME names (worker.ml.engines).
Its framework is imported only here, lazily: never in the web process, never in the worker's parent before fork;
with LiteRT (the default) the worker imports neither TensorFlow nor Keras."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from worker.ml.inference import Predictor

logger = logging.getLogger(__name__)


class _Loaded:
    predictor: Predictor | None = None
    lock = threading.Lock()


_loaded = _Loaded()


def get_predictor() -> Predictor:
    with _loaded.lock:
        if _loaded.predictor is None:
            from worker.ml.inference import Predictor
            from worker.ml.spec import ModelSpec

            _loaded.predictor = Predictor(
                ModelSpec.load(settings.MODEL_DIR),
                settings.INFERENCE_BATCH_SIZE,
                settings.INFERENCE_THREADS,
                runtime=settings.INFERENCE_RUNTIME,
            )
            logger.info("model %s loaded, on %s", _loaded.predictor.spec.version, _loaded.predictor.runtime)
        return _loaded.predictor


def health() -> dict[str, Any]:
    """The worker's health check (`celery inspect model`): the runtime set, the model card's version and the file
    that runtime loads, its sha256 checked against the card (raises IntegrityError if it differs); and, where this
    process holds the model (a pool child, or a solo worker), the runtime that computes its results. Loads no
    framework."""
    from worker.ml.spec import ModelSpec

    spec = ModelSpec.load(settings.MODEL_DIR)
    if settings.INFERENCE_RUNTIME == "litert":
        path = spec.litert_path()
    else:
        path = spec.verified_path(spec.weights_file, spec.sha256)
    loaded = _loaded.predictor
    return {
        "runtime": settings.INFERENCE_RUNTIME,
        "model_version": spec.version,
        "model_file": path.name,
        "loaded_runtime": loaded.runtime if loaded is not None else None,
    }
