"""How a logit becomes the probability shown and the call (numpy only: the card, the worker and the app share it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """(n,) real -> (n,) in (0, 1), clipped so that no exp overflows."""
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0))))


@dataclass(frozen=True)
class OperatingPoint:
    """How the model's logit z becomes the probability shown and the call: P(pneumonia) = sigmoid(slope * z +
    intercept), PNEUMONIA when P >= threshold. The model card's own point is slope 1/T (its temperature),
    intercept 0 and its threshold; a site that adopted its own (worker.ml.site) has a local Platt map and
    threshold."""

    slope: float
    intercept: float
    threshold: float

    def probability(self, logit: float) -> float:
        return float(self.probabilities(np.array([logit]))[0])

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """(n,) logits -> (n,) P(pneumonia) in (0, 1)."""
        return sigmoid(self.slope * np.asarray(logits, dtype=np.float64) + self.intercept)
