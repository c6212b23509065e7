"""Load a ModelSpec once and turn image bytes into a Prediction (imports TensorFlow)."""

from __future__ import annotations

import time

import keras
import numpy as np

from worker.ml import calibration, overlay, preprocessing
from worker.ml.gate import Gate
from worker.ml.gradcam import GradCam, analysis_model, scaled
from worker.ml.polarity import Polarity
from worker.ml.prediction import Prediction
from worker.ml.spec import ModelSpec


class Predictor:
    """Holds the loaded model, its Grad-CAM analysis model, the gate and the polarity detector.

    Never mutates the model. The heatmap rule: a PNEUMONIA call shows where the evidence for pneumonia lies,
    on the card's absolute scale; a NORMAL call shows no map (the model found no focal evidence).
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        model = keras.models.load_model(spec.verified_path(spec.weights_file, spec.sha256), compile=False)
        self.analysis = analysis_model(model, spec.conv_layers, spec.feature_layers)
        self.gradcam = GradCam(self.analysis, len(spec.conv_layers))
        self.gate = Gate.load(spec.verified_path(spec.gate.file, spec.gate.sha256)) if spec.gate else None
        self.polarity = (
            Polarity.load(spec.verified_path(spec.polarity.file, spec.polarity.sha256)) if spec.polarity else None
        )
        self.gradcam(np.zeros((spec.input_size, spec.input_size), np.uint8))  # build the graph now

    def batch_outputs(self, images: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """images: (n, S, S) uint8 -> (logits (n,), features (n, d)); no Grad-CAM, for evaluation."""
        outs = self.analysis.predict(images[..., None], batch_size=batch, verbose=0)
        feats = np.concatenate(outs[len(self.spec.conv_layers) : -1], axis=-1)
        return np.asarray(outs[-1][:, 0], dtype=np.float64), np.asarray(feats)

    def shown_cam(self, cam: np.ndarray, label: str) -> np.ndarray:
        """The heatmap rule: raw cam -> the map drawn, (h, w) in [0, 1]; all zero for a NORMAL call."""
        if label != self.spec.labels[1]:
            return np.zeros_like(cam)
        return scaled(cam, self.spec.cam_scale)

    def predict(self, data: bytes, max_pixels: int = preprocessing.DEFAULT_MAX_PIXELS) -> Prediction:
        """Raises preprocessing.ImageRejected for unusable, inverted or non-radiograph input."""
        start = time.perf_counter()
        decoded = preprocessing.decode(data, max_pixels)
        image = preprocessing.model_input(decoded.gray, self.spec.input_size)
        if self.polarity is not None:
            reason = self.polarity.reason(image)
            if reason:
                raise preprocessing.ImageRejected(reason)
        r = self.gradcam(image)
        if self.gate is not None:
            reason = self.gate.reason(r.features, decoded.chroma)
            if reason:
                raise preprocessing.ImageRejected(reason)
        probability = float(calibration.probabilities(np.array([r.logit]), self.spec.temperature)[0])
        label = self.spec.labels[int(probability >= self.spec.threshold)]
        heatmap_png, overlay_png = overlay.render(
            preprocessing.display_image(decoded.gray), self.shown_cam(r.cam, label)
        )
        return Prediction(
            label=label,
            probability=probability,
            threshold=self.spec.threshold,
            model_version=self.spec.version,
            heatmap_png=heatmap_png,
            overlay_png=overlay_png,
            inference_ms=round((time.perf_counter() - start) * 1000),
        )
