"""Is this a chest radiograph at all? A gate in the model's own feature space.

Two checks, cheapest first: a colour photograph (radiographs carry no chroma), then the Mahalanobis
distance of the pooled CNN features to the training radiographs (Lee et al. 2018), with a
Ledoit-Wolf shrunk covariance. The distance limit is a high percentile of the training distances.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# What a clinician is told, then the figures for the curious (worker.ml.refusals orders the checks).
COLOUR = "This looks like a colour photograph, not a chest X-ray. Only chest radiographs are judged."
NOT_A_RADIOGRAPH = (
    "This does not look like a chest X-ray: it may be a photograph, a document or another kind of scan (a CT or MR "
    "slice). Only chest radiographs are judged."
)
DETAIL = " Technical detail: "


def explained(message: str, detail: str) -> str:
    """The reason as stored and shown: the clinician's sentence first, the figures after DETAIL."""
    return f"{message}{DETAIL}{detail}."


@dataclass(frozen=True)
class Gate:
    """mean: (d,); precision: (d, d); max_distance and max_chroma: the acceptance limits."""

    mean: np.ndarray
    precision: np.ndarray
    max_distance: float
    max_chroma: float

    def distances(self, features: np.ndarray) -> np.ndarray:
        """features: (n, d) -> (n,) Mahalanobis distances."""
        centred = np.asarray(features, dtype=np.float64) - self.mean
        return np.sqrt(np.maximum(((centred @ self.precision) * centred).sum(axis=1), 0.0))

    def rejected(self, features: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        """features: (n, d); chroma: (n,) -> (n,) bool, True where reason() would reject (for measuring)."""
        return np.asarray((self.distances(features) > self.max_distance) | (chroma > self.max_chroma))

    def reason(self, features: np.ndarray, chroma: float) -> str | None:
        """None when the input looks like a chest radiograph, else the reason to reject it."""
        return self.reasons(features[None, :], np.array([chroma]))[0]

    def reasons(self, features: np.ndarray, chroma: np.ndarray) -> list[str | None]:
        """features: (n, d); chroma: (n,) -> reason() for each, with one matrix product for the batch."""
        return [self._reason(float(d), float(c)) for d, c in zip(self.distances(features), chroma, strict=True)]

    def _reason(self, distance: float, chroma: float) -> str | None:
        if chroma > self.max_chroma:
            return explained(COLOUR, self.colour_detail(chroma))
        if distance > self.max_distance:
            return explained(NOT_A_RADIOGRAPH, self.distance_detail(distance))
        return None

    def colour_detail(self, chroma: float) -> str:
        return f"colour saturation {chroma:.2f}, limit {self.max_chroma:.2f}"

    def distance_detail(self, distance: float) -> str:
        return f"feature distance {distance:.1f} from the training radiographs, limit {self.max_distance:.1f}"

    def save(self, path: Path) -> None:
        np.savez(
            path,
            mean=self.mean.astype(np.float32),
            precision=self.precision.astype(np.float32),
            max_distance=self.max_distance,
            max_chroma=self.max_chroma,
        )

    @classmethod
    def load(cls, path: Path) -> Gate:
        with np.load(path) as data:
            mean, precision = (np.asarray(data[k], dtype=np.float64) for k in ("mean", "precision"))
            return cls(mean, precision, float(data["max_distance"]), float(data["max_chroma"]))


def fit(features: np.ndarray, percentile: float = 99.7, max_chroma: float = 0.12) -> Gate:
    """features: (n, d) pooled features of training radiographs. scikit-learn (and SciPy under it) is imported here,
    at training time only: every web, worker and manage.py process imports this module for the gate's words."""
    from sklearn.covariance import LedoitWolf

    lw = LedoitWolf().fit(np.asarray(features, dtype=np.float64))
    gate = Gate(lw.location_, lw.precision_, float("inf"), max_chroma)
    limit = float(np.percentile(gate.distances(features), percentile))
    return Gate(gate.mean, gate.precision, limit * 1.1, max_chroma)


def with_limit(g: Gate, held_out: np.ndarray, percentile: float = 99.7, margin: float = 1.1) -> Gate:
    """The same gate with its distance limit set on held-out radiographs' features (n, d): margin x percentile.

    Training features sit closer to their own mean than any new radiograph does, so a limit set on them alone
    rejects too many real radiographs; the held-out ones come from the honest validation and its shifts."""
    limit = float(np.percentile(g.distances(held_out), percentile)) * margin
    return Gate(g.mean, g.precision, limit, g.max_chroma)
