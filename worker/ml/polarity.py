"""Is the radiograph the right way round? A small linear detector of inverted grey levels (numpy/OpenCV).

A chest radiograph shows dark lungs either side of a bright spine and mediastinum; a negative (for
example a MONOCHROME1 image shown as MONOCHROME2) shows the opposite, and the classifier must never judge
one. The detector is a logistic regression on the 16x16 area-downsampled model input, standardised per
image. Standardising makes inversion an exact sign flip of the features, so the fit has no intercept
and treats both polarities alike. It is fitted on training radiographs and their negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from worker.ml.gate import explained

GRID = 16
INVERTED = (
    "This chest X-ray looks inverted (a negative: bones dark, lungs bright). "
    "Export the radiograph with its usual polarity (MONOCHROME2) and upload it again."
)


def features(images: np.ndarray) -> np.ndarray:
    """images: (n, S, S) uint8 model inputs -> (n, GRID * GRID) float64, zero mean and unit variance per image."""
    small = np.stack([cv2.resize(im, (GRID, GRID), interpolation=cv2.INTER_AREA) for im in images])
    flat = small.reshape(len(images), -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    return np.asarray(flat / np.maximum(flat.std(axis=1, keepdims=True), 1e-6))


@dataclass(frozen=True)
class Polarity:
    """coef: (GRID * GRID,) weights of the logistic regression; P(inverted) = sigmoid(features . coef)."""

    coef: np.ndarray

    def p_inverted(self, images: np.ndarray) -> np.ndarray:
        """images: (n, S, S) uint8 -> (n,) P(inverted) in [0, 1]."""
        z = features(images) @ self.coef
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -60, 60))))

    def reason(self, image: np.ndarray) -> str | None:
        """None for a radiograph the right way round, else the reason to refuse it."""
        return self.reasons(image[None])[0]

    def reasons(self, images: np.ndarray) -> list[str | None]:
        """images: (n, S, S) uint8 -> reason() for each."""
        return [explained(INVERTED, detail(p)) if p >= 0.5 else None for p in self.p_inverted(images).tolist()]

    def save(self, path: Path) -> None:
        np.savez(path, coef=self.coef.astype(np.float32))

    @classmethod
    def load(cls, path: Path) -> Polarity:
        with np.load(path) as data:
            return cls(np.asarray(data["coef"], dtype=np.float64))


def detail(p_inverted: float) -> str:
    return f"P(inverted) {p_inverted:.2f}"


def fit(images: np.ndarray, c: float = 1.0) -> Polarity:
    """images: (n, S, S) uint8 radiographs the right way round; their negatives are made here."""
    from sklearn.linear_model import LogisticRegression

    x = features(np.concatenate([images, 255 - images]))
    y = np.r_[np.zeros(len(images)), np.ones(len(images))]
    clf = LogisticRegression(C=c, fit_intercept=False, max_iter=2000).fit(x, y)
    return Polarity(np.asarray(clf.coef_[0], dtype=np.float64))
