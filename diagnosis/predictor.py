"""The worker process's one model, loaded on first use. TensorFlow is imported only here, lazily: never in the web
process, never in the worker's parent before fork."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

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
                ModelSpec.load(settings.MODEL_DIR), settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_THREADS
            )
            logger.info("model %s loaded", _loaded.predictor.spec.version)
        return _loaded.predictor
