"""A site's own evidence: Wilson intervals, local performance at a threshold (optionally weighted by
inverse sampling probabilities, Horvitz-Thompson), and the proposal of the site's operating point with a Platt
recalibration of the model's logit. numpy/scipy/scikit-learn only; arrays in, frozen dataclasses out.

The model's stored output is one logit z. The card maps it as P = sigmoid(z / T); a site's Platt map
P = sigmoid(a * z + b) generalises it (the card's map is a = 1 / T, b = 0: ModelSpec.operating_point).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from worker.ml import calibration, metrics

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval
MIN_PER_CLASS = 50  # a proposal is "enough" with at least this many local studies of each class
FOLDS = 5  # cross-fitting folds for a proposal's expected figures
PLATT_L2 = 1e-2  # the L2 penalty on (a, b): keeps perfectly separable data finite, negligible otherwise
ROC_POINTS = 100  # the most ROC points returned for drawing
RELIABILITY_BINS = 10
MAX_AIM = 0.995  # the margin never aims the threshold above this sensitivity
# The margin in standard errors of the target over the local pneumonia cases. Simulated sites of the external
# split's size: with 0 the held-out sensitivity fell below target - 0.02 in 24 % of draws, with 0.5 in 13 %, with 1
# in 5 %; each half standard error cost about 2 points of specificity at AUC 0.98 (docs/site-validation.md).
MARGIN_SE = 0.5

# The rule in words, its figures from the constants above (diagnosis.site.rule_words says it in the page's language).
PROPOSAL_RULE = (
    f"From this site's own labelled studies (at least {MIN_PER_CLASS} of each class; fewer is shown as not enough), "
    "the probability is recalibrated with a Platt map P = sigmoid(a x logit + b), fitted by maximum likelihood with a "
    "tiny penalty on a and b, and the proposed threshold is the highest recalibrated probability at which the "
    "site's pneumonia cases are still called PNEUMONIA at the target sensitivity plus half a standard error of it "
    f"({MARGIN_SE} sqrt(t(1 - t)/n) for n local pneumonia cases, at most {MAX_AIM}): the margin makes the target "
    "more likely to hold on the next patients, not only on the studies it was fitted on. The sensitivity, specificity "
    "and calibration error it expects are cross-fitted so they are not optimistic: five times, the map and the "
    "threshold are fitted on four fifths of the studies (each class split at random) and judged on the remaining "
    "fifth; the pooled held-out figures are shown with 95 % Wilson intervals."
)


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of successes / n, (low, high) within [0, 1]; (0.0, 1.0) when n == 0.

    successes and n may be fractional (an effective sample size and its weighted share)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Proportion:
    """A (weighted) share with its 95 % Wilson interval; value is nan and the interval (0, 1) without cases."""

    value: float
    low: float
    high: float
    n: int  # cases in the denominator
    n_effective: float  # Kish's (sum w)^2 / sum w^2; equals n without weights


def proportion(hits: np.ndarray, weights: np.ndarray | None = None) -> Proportion:
    """hits: (m,) bool, one per case of the denominator; weights: (m,) > 0 or None (all 1).

    The value is the weighted share sum(w * hit) / sum(w) (Horvitz-Thompson); the interval is Wilson's at the
    Kish effective sample size."""
    hits = np.asarray(hits, dtype=bool)
    w = np.ones(hits.size) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if hits.size == 0 or total <= 0:
        return Proportion(float("nan"), 0.0, 1.0, 0, 0.0)
    value = float(w[hits].sum()) / total
    n_effective = total * total / float((w * w).sum())
    low, high = wilson(value * n_effective, n_effective)
    return Proportion(value, low, high, int(hits.size), n_effective)


@dataclass(frozen=True)
class Roc:
    """At most ROC_POINTS points of the ROC curve, by falling threshold (thresholds clipped to [0, 1])."""

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    thresholds: tuple[float, ...]


@dataclass(frozen=True)
class ReliabilityBin:
    """One equal-width bin (lower, upper] of predicted probability; the means are None for an empty bin."""

    lower: float
    upper: float
    mean_predicted: float | None
    observed: float | None  # the (weighted) share of pneumonia in the bin
    count: int


@dataclass(frozen=True)
class Performance:
    """Local performance at one threshold (PNEUMONIA when P >= threshold)."""

    threshold: float
    n_positive: int
    n_negative: int
    weighted: bool  # True: inverse-probability weighted estimates (Horvitz-Thompson), else the plain sample
    sensitivity: Proportion
    specificity: Proportion
    ppv: Proportion
    npv: Proportion
    prevalence: Proportion
    auc: float  # nan without both classes
    ece: float
    roc: Roc
    reliability: tuple[ReliabilityBin, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def checked(
    values: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n,) values, (n,) labels 0/1, optional (n,) weights > 0 -> float64 values, int labels, weights (1 if None).

    Raises ValueError on other shapes, labels outside {0, 1}, non-finite values or weights that are not > 0."""
    v = np.asarray(values, dtype=np.float64)
    y = np.asarray(labels)
    w = np.ones(v.shape, dtype=np.float64) if weights is None else np.asarray(weights, dtype=np.float64)
    if v.ndim != 1 or y.shape != v.shape or w.shape != v.shape:
        raise ValueError(f"expected equal 1-D arrays, got {v.shape}, {y.shape}, {w.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (NORMAL) or 1 (PNEUMONIA)")
    if not (np.isfinite(v).all() and np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("values must be finite and weights finite and > 0")
    return v, y.astype(np.int64), w


def performance(
    probs: np.ndarray, labels: np.ndarray, threshold: float, weights: np.ndarray | None = None
) -> Performance:
    """probs: (n,) P(pneumonia) in [0, 1] (for logits, map them first: `apply` or calibration.probabilities);
    labels: (n,) 0 NORMAL / 1 PNEUMONIA; weights: optional (n,) > 0, each study's inverse sampling probability."""
    from sklearn.metrics import roc_auc_score

    p, y, w = checked(probs, labels, weights)
    called, positive = p >= threshold, y == 1
    return Performance(
        threshold=float(threshold),
        n_positive=int(positive.sum()),
        n_negative=int((~positive).sum()),
        weighted=weights is not None,
        sensitivity=proportion(called[positive], w[positive]),
        specificity=proportion(~called[~positive], w[~positive]),
        ppv=proportion(positive[called], w[called]),
        npv=proportion(~positive[~called], w[~called]),
        prevalence=proportion(positive, w),
        auc=float(roc_auc_score(y, p, sample_weight=w)) if 0 < positive.sum() < y.size else float("nan"),
        ece=metrics.expected_calibration_error(p, y, weights=w) if y.size else float("nan"),
        roc=roc(p, y, w),
        reliability=reliability(p, y, w),
    )


def roc(probs: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None, most: int = ROC_POINTS) -> Roc:
    """(n,) probabilities, (n,) labels 0/1, optional (n,) weights -> the (weighted) ROC curve thinned to at most
    `most` points (first and last kept); empty without both classes."""
    from sklearn.metrics import roc_curve

    if np.unique(labels).size < 2:
        return Roc((), (), ())
    fpr, tpr, thresholds = roc_curve(labels, probs, sample_weight=weights)
    keep = np.unique(np.round(np.linspace(0, fpr.size - 1, min(fpr.size, most))).astype(int))
    return Roc(
        tuple(float(v) for v in fpr[keep]),
        tuple(float(v) for v in tpr[keep]),
        tuple(float(v) for v in np.clip(thresholds[keep], 0.0, 1.0)),
    )


def reliability(
    probs: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None, bins: int = RELIABILITY_BINS
) -> tuple[ReliabilityBin, ...]:
    """(n,) probabilities in [0, 1], labels 0/1, optional weights -> `bins` equal-width bins, the same bins as
    metrics.expected_calibration_error."""
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    which = metrics.bin_index(probs, bins)
    out = []
    for b in range(bins):
        mask = which == b
        filled = bool(mask.any())
        out.append(
            ReliabilityBin(
                lower=b / bins,
                upper=(b + 1) / bins,
                mean_predicted=float(np.average(probs[mask], weights=w[mask])) if filled else None,
                observed=float(np.average(labels[mask], weights=w[mask])) if filled else None,
                count=int(mask.sum()),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class Platt:
    """P(pneumonia) = sigmoid(a * logit + b)."""

    a: float
    b: float

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """(n,) logits -> (n,) probabilities in (0, 1)."""
        return calibration.sigmoid(self.a * np.asarray(logits, dtype=np.float64) + self.b)


def fit_platt(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None, l2: float = PLATT_L2) -> Platt:
    """(n,) logits, (n,) labels 0/1, optional (n,) weights > 0 -> the Platt map of least (weighted) negative
    log-likelihood plus l2 / 2 * (a^2 + b^2); weights are rescaled to mean 1 so l2 means the same at any scale."""
    from scipy.optimize import minimize

    z, y, w = checked(logits, labels, weights)
    w = w / w.mean()

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params
        s = a * z + b
        value = float((w * (np.logaddexp(0.0, s) - y * s)).sum() + 0.5 * l2 * (a * a + b * b))
        r = w * (calibration.sigmoid(s) - y)
        return value, np.array([(r * z).sum() + l2 * a, r.sum() + l2 * b])

    result = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return Platt(float(result.x[0]), float(result.x[1]))


@dataclass(frozen=True)
class Proposal:
    """A site's proposed operating point: PNEUMONIA when sigmoid(platt_a * logit + platt_b) >= threshold."""

    threshold: float  # on the recalibrated probability
    platt_a: float
    platt_b: float
    target_sensitivity: float
    n_positive: int
    n_negative: int
    minimum_per_class: int
    enough: bool  # at least minimum_per_class of each class
    expected_sensitivity: Proportion  # cross-fitted, pooled over the held-out folds
    expected_specificity: Proportion
    expected_ece: float
    folds: int
    weighted: bool

    @property
    def platt(self) -> Platt:
        return Platt(self.platt_a, self.platt_b)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def aimed_sensitivity(target: float, n_positive: int) -> float:
    """The sensitivity the threshold is fitted for: the target plus MARGIN_SE standard errors of a proportion at
    the target over the sample's positives (small samples aim higher), at most MAX_AIM."""
    return min(MAX_AIM, target + MARGIN_SE * math.sqrt(target * (1.0 - target) / max(1, n_positive)))


def fit_point(
    logits: np.ndarray, labels: np.ndarray, target: float, weights: np.ndarray | None = None
) -> tuple[Platt, float]:
    """The rule on one sample: the Platt map, then the highest threshold on its probabilities whose (weighted)
    sensitivity on the sample's positives is still >= the aimed sensitivity (aimed_sensitivity)."""
    platt = fit_platt(logits, labels, weights)
    aim = max(target, aimed_sensitivity(target, int(labels.sum())))
    return platt, calibration.threshold_for_sensitivity(platt.probabilities(logits), labels, aim, weights)


def stratified_folds(labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """(n,) labels 0/1 -> (n,) fold in 0..k-1; each class is shuffled (seeded) and dealt round the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    for cls in (0, 1):
        members = np.flatnonzero(labels == cls)
        fold[rng.permutation(members)] = np.arange(members.size) % k
    return fold


def cross_fitted(
    logits: np.ndarray, labels: np.ndarray, target: float, *, weights: np.ndarray, k: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Each study judged by the rule fitted without its fold -> ((n,) held-out recalibrated probability,
    (n,) held-out PNEUMONIA call). k must not exceed the smaller class's count."""
    fold = stratified_folds(labels, k, seed)
    probs = np.zeros(len(labels))
    called = np.zeros(len(labels), dtype=bool)
    for f in range(k):
        out = fold == f
        platt, threshold = fit_point(logits[~out], labels[~out], target, weights[~out])
        probs[out] = platt.probabilities(logits[out])
        called[out] = probs[out] >= threshold
    return probs, called


def propose(
    logits: np.ndarray,
    labels: np.ndarray,
    target_sensitivity: float,
    *,
    weights: np.ndarray | None = None,
    minimum_per_class: int = MIN_PER_CLASS,
    folds: int = FOLDS,
    seed: int = 0,
) -> Proposal:
    """PROPOSAL_RULE on a site's labelled studies. logits: (n,) the model's raw logits; labels: (n,) 0/1;
    weights: optional (n,) > 0 inverse sampling probabilities; target_sensitivity in (0, 1].

    Below minimum_per_class the proposal is still computed, with enough=False. Raises ValueError when a class
    has fewer than 2 studies (nothing to fit on and hold out)."""
    z, y, w = checked(logits, labels, weights)
    n_positive, n_negative = int(y.sum()), int((1 - y).sum())
    if min(n_positive, n_negative) < 2:
        raise ValueError(
            f"a proposal needs at least 2 studies of each class ({n_positive} pneumonia, {n_negative} normal)"
        )
    platt, threshold = fit_point(z, y, target_sensitivity, w)
    k = min(folds, n_positive, n_negative)
    held_probs, held_called = cross_fitted(z, y, target_sensitivity, weights=w, k=k, seed=seed)
    positive = y == 1
    return Proposal(
        threshold=threshold,
        platt_a=platt.a,
        platt_b=platt.b,
        target_sensitivity=float(target_sensitivity),
        n_positive=n_positive,
        n_negative=n_negative,
        minimum_per_class=minimum_per_class,
        enough=min(n_positive, n_negative) >= minimum_per_class,
        expected_sensitivity=proportion(held_called[positive], w[positive]),
        expected_specificity=proportion(~held_called[~positive], w[~positive]),
        expected_ece=metrics.expected_calibration_error(held_probs, y, weights=w),
        folds=k,
        weighted=weights is not None,
    )


def apply(logits: np.ndarray, proposal: Proposal) -> np.ndarray:
    """(n,) logits -> (n,) the site's recalibrated P(pneumonia) in (0, 1); PNEUMONIA when >= proposal.threshold."""
    return proposal.platt.probabilities(logits)
