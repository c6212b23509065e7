"""Temperature scaling and threshold choice, fitted on validation logits (numpy/scipy only)."""

from __future__ import annotations

import numpy as np

from worker.ml.operating_point import sigmoid


def probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """logits: (n,) raw model outputs -> (n,) calibrated P(pneumonia) in (0, 1)."""
    return sigmoid(np.asarray(logits, dtype=np.float64) / temperature)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = np.clip(probabilities(logits, temperature), 1e-12, 1 - 1e-12)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the negative log-likelihood of sigmoid(logit / T) (Guo et al. 2017)."""
    from scipy.optimize import minimize_scalar

    result = minimize_scalar(
        lambda log_t: nll(logits, labels, float(np.exp(log_t))), bounds=(-3.0, 3.0), method="bounded"
    )
    return float(np.exp(result.x))


def threshold_for_sensitivity(
    probs: np.ndarray, labels: np.ndarray, target: float, weights: np.ndarray | None = None
) -> float:
    """The highest threshold whose sensitivity (P(prob >= t | positive)) is still >= target.

    The highest such threshold gives the best specificity the sensitivity target allows. probs: (n,) in [0, 1];
    labels: (n,) 0/1; weights: optional (n,) > 0 (inverse sampling probabilities), the sensitivity is then the
    weighted share of the positives (with unit weights the same threshold as without).
    """
    positive = labels == 1
    order = np.argsort(probs[positive], kind="stable")
    positives = probs[positive][order]
    if positives.size == 0:
        raise ValueError("no positive examples to set a threshold on")
    w = np.ones(positives.size) if weights is None else np.asarray(weights, dtype=np.float64)[positive][order]
    missed = np.concatenate([[0.0], np.cumsum(w)[:-1]])  # the weight below each candidate threshold
    allowed = (1.0 - target + 1e-9) * w.sum()  # 1e-9: (1 - 0.8) * 5 is 0.999...
    return float(positives[np.flatnonzero(missed <= allowed)[-1]])
