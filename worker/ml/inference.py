"""Load a ModelSpec once and turn image bytes into a Prediction (imports TensorFlow)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np

from worker.ml import calibration, overlay, preprocessing
from worker.ml.gate import Gate
from worker.ml.gradcam import GradCam, analysis_model
from worker.ml.spec import ModelSpec


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float
    logit: float
    threshold: float
    model_version: str
    heatmap_png: bytes
    overlay_png: bytes
    inference_ms: int


class Predictor:
    """Holds the loaded model, its Grad-CAM analysis model and the gate. Never mutates the model."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        model = keras.models.load_model(spec.verified_path(spec.weights_file, spec.sha256), compile=False)
        self.analysis = analysis_model(model, spec.conv_layer)
        self.gradcam = GradCam(self.analysis)
        self.gate = Gate.load(spec.verified_path(spec.gate.file, spec.gate.sha256)) if spec.gate else None
        self.predict_array(np.zeros((spec.input_size, spec.input_size), np.uint8))  # build the graph now

    def predict_array(self, image: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """image: (S, S) uint8 model input -> (logit, cam (h, w) in [0, 1], features (d,))."""
        r = self.gradcam(image)
        return r.logit, r.cam, r.features

    def batch_outputs(self, images: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """images: (n, S, S) uint8 -> (logits (n,), features (n, d)); no Grad-CAM, for evaluation."""
        _, feats, logits = self.analysis.predict(images[..., None], batch_size=batch, verbose=0)
        return np.asarray(logits[:, 0], dtype=np.float64), np.asarray(feats)

    def predict(self, data: bytes, max_pixels: int = preprocessing.DEFAULT_MAX_PIXELS) -> Prediction:
        """Raises preprocessing.ImageRejected for unusable or non-radiograph input."""
        start = time.perf_counter()
        decoded = preprocessing.decode(data, max_pixels)
        logit, cam, features = self.predict_array(preprocessing.model_input(decoded.gray, self.spec.input_size))
        if self.gate is not None:
            reason = self.gate.reason(features, decoded.chroma)
            if reason:
                raise preprocessing.ImageRejected(reason)
        probability = float(calibration.probabilities(np.array([logit]), self.spec.temperature)[0])
        heatmap_png, overlay_png = overlay.render(preprocessing.display_image(decoded.gray), cam)
        return Prediction(
            label=self.spec.labels[int(probability >= self.spec.threshold)],
            probability=probability,
            logit=logit,
            threshold=self.spec.threshold,
            model_version=self.spec.version,
            heatmap_png=heatmap_png,
            overlay_png=overlay_png,
            inference_ms=round((time.perf_counter() - start) * 1000),
        )
