"""How a logit becomes the probability shown and the call (numpy only: the card, the worker and the app share it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
        z = np.clip(self.slope * np.asarray(logits, dtype=np.float64) + self.intercept, -60.0, 60.0)
        return np.asarray(1.0 / (1.0 + np.exp(-z)))
