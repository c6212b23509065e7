"""Drift of a site's outputs against a reference, without labels (issue 26; numpy/scipy only).

The reference is stored as a histogram: BINS bin fractions of P(pneumonia) over equal-width bins of [0, 1]
(`reference_histogram`), plus a positive rate and its n, so no raw samples need keeping. DRIFT_RULES states
the rules `output_alerts` applies; the thresholds are the module constants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BINS = 10
EPSILON = 1e-4  # added to every bin fraction before PSI, so an empty bin gives a large but finite term
PSI_WATCH = 0.1
PSI_ACT = 0.25
JS_WATCH = 0.1  # Jensen-Shannon distance, base 2, in [0, 1]
RATE_WATCH = 0.05  # absolute change of a rate (positive calls, rejections)
RATE_ACT = 0.10
RATE_ALPHA = 0.01  # a rate change counts only when the two-proportion z test's two-sided p is below this
MIN_CURRENT = 50  # no rule judges fewer current studies

DRIFT_RULES = (
    f"Output drift is judged on at least {MIN_CURRENT} current studies against the reference. "
    f"The population stability index (PSI) of the probability histogram ({BINS} equal bins of 0-1) "
    f"raises 'watch' at {PSI_WATCH} and 'act' at {PSI_ACT}; "
    f"the Jensen-Shannon distance (base 2) of the same histograms raises 'watch' at {JS_WATCH}; "
    f"a rate (positive calls, rejections) that moved by at least {RATE_WATCH:.2f} raises 'watch', "
    f"and by at least {RATE_ACT:.2f} 'act', when a two-proportion z test gives p < {RATE_ALPHA}."
)

Histogram = Sequence[float] | np.ndarray


def histogram(probs: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(n,) probabilities in [0, 1] (clipped) -> (bins,) fractions summing to 1; bins [0, 0.1), ..., [0.9, 1]."""
    counts, _ = np.histogram(np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0), bins=bins, range=(0.0, 1.0))
    if counts.sum() == 0:
        raise ValueError("no probabilities to make a histogram of")
    return np.asarray(counts / counts.sum(), dtype=np.float64)


def reference_histogram(probs: np.ndarray, bins: int = BINS) -> list[float]:
    """(n,) probabilities -> `bins` bin fractions as plain floats, to store in a card or a database row."""
    return [float(v) for v in histogram(probs, bins)]


def _normalised(reference: Histogram, current: Histogram) -> tuple[np.ndarray, np.ndarray]:
    """Two histograms (fractions or counts, same length, >= 0, not all zero) -> both as fractions."""
    r, c = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if r.ndim != 1 or r.shape != c.shape or (r < 0).any() or (c < 0).any() or r.sum() <= 0 or c.sum() <= 0:
        raise ValueError("histograms must be 1-D, of equal length, non-negative and not all zero")
    return r / r.sum(), c / c.sum()


def psi(reference: Histogram, current: Histogram) -> float:
    """Population stability index sum_b (c_b - r_b) ln(c_b / r_b) of two histograms (fractions or counts),
    each bin fraction raised by EPSILON and renormalised; 0 for identical histograms, >= 0 always."""
    r, c = _normalised(reference, current)
    r, c = (r + EPSILON) / (1 + EPSILON * r.size), (c + EPSILON) / (1 + EPSILON * c.size)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference: Histogram, current: Histogram) -> float:
    """Jensen-Shannon distance (the square root of the divergence, base 2) of two histograms, in [0, 1]."""
    from scipy.spatial.distance import jensenshannon  # SciPy only where computed (see worker/ml/__init__.py)

    r, c = _normalised(reference, current)
    return float(jensenshannon(r, c, base=2.0))


@dataclass(frozen=True)
class RateChange:
    """A rate (hits / n) now against the reference, with a pooled two-proportion z test."""

    reference: float
    current: float
    difference: float  # current - reference
    z: float
    p_value: float  # two-sided


def rate_change(reference_hits: float, reference_n: float, current_hits: float, current_n: float) -> RateChange:
    """Counts (hits may be fractional, e.g. rate x n from a card) -> the change; n must be > 0."""
    from scipy.stats import norm

    if reference_n <= 0 or current_n <= 0:
        raise ValueError("both samples need n > 0")
    r, c = reference_hits / reference_n, current_hits / current_n
    pooled = (reference_hits + current_hits) / (reference_n + current_n)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / reference_n + 1.0 / current_n))
    z = (c - r) / se if se > 0 else 0.0
    return RateChange(r, c, c - r, z, float(2.0 * norm.sf(abs(z))))


@dataclass(frozen=True)
class Alert:
    kind: str  # "psi", "js", or the rate's name ("positive_rate", "rejection_rate", ...)
    level: str  # "watch" or "act"
    value: float
    threshold: float  # the documented threshold it reached
    message: str


def _level(value: float, watch: float, act: float | None) -> tuple[str, float] | None:
    """(level, threshold reached) or None; 1e-12 lets 0.35 - 0.30 (0.0499999...) reach 0.05."""
    if act is not None and value >= act - 1e-12:
        return "act", act
    return ("watch", watch) if value >= watch - 1e-12 else None


def distribution_alerts(psi_value: float, js_value: float) -> list[Alert]:
    """The histogram rules of DRIFT_RULES on a PSI and a Jensen-Shannon distance."""
    alerts = []
    for kind, value, watch, act, name in (
        ("psi", psi_value, PSI_WATCH, PSI_ACT, "population stability index"),
        ("js", js_value, JS_WATCH, None, "Jensen-Shannon distance"),
    ):
        hit = _level(value, watch, act)
        if hit is not None:
            message = f"The probability distribution moved: {name} {value:.3f} >= {hit[1]} ({hit[0]})."
            alerts.append(Alert(kind, hit[0], value, hit[1], message))
    return alerts


def rate_alerts(kind: str, change: RateChange) -> list[Alert]:
    """The rate rule of DRIFT_RULES: |difference| >= RATE_WATCH (watch) or RATE_ACT (act) with p < RATE_ALPHA."""
    hit = _level(abs(change.difference), RATE_WATCH, RATE_ACT)
    if hit is None or change.p_value >= RATE_ALPHA:
        return []
    message = (
        f"The {kind.replace('_', ' ')} moved from {change.reference:.3f} to {change.current:.3f} "
        f"(change {change.difference:+.3f}, p = {change.p_value:.2g}; {hit[0]} at {hit[1]:.2f})."
    )
    return [Alert(kind, hit[0], abs(change.difference), hit[1], message)]


def output_alerts(
    reference: Histogram,
    reference_positive_rate: float,
    reference_n: int,
    current_probs: np.ndarray,
    current_called: np.ndarray,
) -> list[Alert]:
    """DRIFT_RULES on a site's current outputs. reference: the stored bin fractions; current_probs: (m,) shown
    P(pneumonia) in [0, 1]; current_called: (m,) bool PNEUMONIA calls. No alerts below MIN_CURRENT studies."""
    probs = np.asarray(current_probs, dtype=np.float64)
    if probs.size < MIN_CURRENT:
        return []
    current = histogram(probs, len(reference))
    change = rate_change(
        reference_positive_rate * reference_n, reference_n, float(np.sum(current_called)), float(probs.size)
    )
    return distribution_alerts(psi(reference, current), js_distance(reference, current)) + rate_alerts(
        "positive_rate", change
    )
