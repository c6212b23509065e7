"""The rules of worker.ml.site: Wilson intervals, the inverse-probability estimate, Platt, the proposal, and a
simulated new site on synthetic logits (the real-model run is tools/simulate_site.py)."""

from __future__ import annotations

import numpy as np
import pytest

from worker.ml import calibration, metrics, site

# The shipped card's map and point (worker/ml/models/current/card.json).
TEMPERATURE = 2.3131374865864895
SHIPPED_THRESHOLD = 0.6962971400234405


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [(8, 10, (0.490, 0.943)), (0, 10, (0.0, 0.278)), (10, 10, (0.722, 1.0)), (50, 100, (0.404, 0.596))],
)
def test_wilson_against_known_values(successes: int, n: int, expected: tuple[float, float]) -> None:
    low, high = site.wilson(successes, n)
    assert (round(low, 3), round(high, 3)) == expected


def test_wilson_without_cases_is_the_whole_range() -> None:
    assert site.wilson(0, 0) == (0.0, 1.0)


def test_equal_weights_give_the_unweighted_interval() -> None:
    hits = np.array([True] * 8 + [False] * 2)
    weighted = site.proportion(hits, np.full(10, 7.0))
    assert weighted.n_effective == pytest.approx(10.0)
    assert (weighted.low, weighted.high) == pytest.approx(site.wilson(8, 10))


def test_unequal_weights_widen_the_interval() -> None:
    """Kish by hand: weights 1 (x8) and 5 (x2) give n_eff = (8 + 10)^2 / (8 + 50) = 5.59 of 10."""
    weights = np.array([1.0] * 8 + [5.0] * 2)
    p = site.proportion(np.array([True] * 8 + [False] * 2), weights)
    assert p.value == pytest.approx(8 / 18)
    assert p.n_effective == pytest.approx(18**2 / 58)
    assert (p.low, p.high) == pytest.approx(site.wilson(8 / 18 * 18**2 / 58, 18**2 / 58))


def _population(rng: np.random.Generator, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    labels = (rng.random(n) < 0.3).astype(int)
    probs = calibration.sigmoid(rng.normal(np.where(labels == 1, 2.0, -1.0), 1.5))
    return probs, labels


def test_inverse_probability_weights_remove_the_verification_bias() -> None:
    """Verification by call: NORMAL calls sampled at 10 %, PNEUMONIA calls at 50 %. The plain sample overstates
    the prevalence and the sensitivity and understates the specificity; weighting each study by 1 / p recovers
    them on average. (PPV and NPV are conditional on the call, so sampling by call leaves them unbiased.)"""
    rng = np.random.default_rng(3)
    probs, labels = _population(rng)
    truth = site.performance(probs, labels, 0.5)
    chance = np.where(probs >= 0.5, 0.5, 0.1)
    naive, weighted = [], []
    for _ in range(20):
        s = rng.random(probs.size) < chance
        naive.append(site.performance(probs[s], labels[s], 0.5))
        weighted.append(site.performance(probs[s], labels[s], 0.5, weights=1.0 / chance[s]))
    for name in ("prevalence", "sensitivity", "specificity"):
        true_value = getattr(truth, name).value
        assert abs(np.mean([getattr(r, name).value for r in naive]) - true_value) > 0.04, name
        assert np.mean([getattr(r, name).value for r in weighted]) == pytest.approx(true_value, abs=0.01), name
    assert weighted[0].weighted and not naive[0].weighted


def test_performance_by_hand() -> None:
    # probs 0.1 0.4 0.35 0.8 0.7 0.9, labels 0 0 1 1 0 1, threshold 0.5 -> tn 2, fp 1, fn 1, tp 2
    probs = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.9])
    labels = np.array([0, 0, 1, 1, 0, 1])
    r = site.performance(probs, labels, 0.5)
    assert (r.n_positive, r.n_negative) == (3, 3)
    for p in (r.sensitivity, r.specificity, r.ppv, r.npv):
        assert p.value == pytest.approx(2 / 3)
        assert (p.low, p.high) == pytest.approx(site.wilson(2, 3))
    assert r.auc == pytest.approx(7 / 9)
    assert len(r.reliability) == 10
    assert sum(b.count for b in r.reliability) == 6
    assert r.reliability[0].mean_predicted == pytest.approx(0.1) and r.reliability[0].observed == 0.0
    assert r.reliability[1].count == 0 and r.reliability[1].observed is None
    assert r.roc.fpr[0] == 0.0 and r.roc.fpr[-1] == 1.0


def test_roc_is_thinned_for_drawing() -> None:
    probs, labels = _population(np.random.default_rng(0), 5_000)
    curve = site.roc(probs, labels)
    assert 50 <= len(curve.fpr) <= site.ROC_POINTS
    assert (curve.fpr[0], curve.tpr[-1]) == (0.0, 1.0)
    assert all(0.0 <= t <= 1.0 for t in curve.thresholds)


def test_platt_recovers_a_known_map_and_stays_finite_when_separable() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 3.0, 20_000)
    y = (rng.random(z.size) < calibration.sigmoid(0.5 * z - 1.0)).astype(int)
    fitted = site.fit_platt(z, y)
    assert (fitted.a, fitted.b) == pytest.approx((0.5, -1.0), abs=0.05)
    # Perfectly separable: without the penalty a runs away; with l2 = 0.01 the optimum is where the gradient of
    # the likelihood, sum (sigmoid(a z + b) - y) z, equals -0.01 a (a = 3.95 here).
    z, y = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0]), np.array([0, 0, 0, 1, 1, 1])
    separable = site.fit_platt(z, y)
    residual = calibration.sigmoid(separable.a * z + separable.b) - y
    assert (residual * z).sum() + 0.01 * separable.a == pytest.approx(0.0, abs=1e-4)
    assert 1 < separable.a < 10 and separable.b == pytest.approx(0.0, abs=1e-6)


def test_weighted_ece_by_hand() -> None:
    """Bins of 0.1: bin 0 holds 0.05 (label 0, weight 3) and 0.05 (label 1): observed 1/4, predicted 0.05, gap 0.2,
    weight 4; bin 9 holds two 0.95 with label 1: gap 0.05, weight 2 -> (0.8 + 0.1) / 6 = 0.15 (0.25 unweighted)."""
    probs, labels = np.array([0.05, 0.05, 0.95, 0.95]), np.array([0, 1, 1, 1])
    assert metrics.expected_calibration_error(probs, labels, weights=np.array([3.0, 1, 1, 1])) == pytest.approx(0.15)
    assert metrics.expected_calibration_error(probs, labels, weights=np.full(4, 2.0)) == pytest.approx(0.25)
    r = site.performance(probs, labels, 0.5, weights=np.array([3.0, 1, 1, 1]))
    assert r.ece == pytest.approx(0.15)
    assert r.reliability[0].observed == pytest.approx(0.25) and r.reliability[0].count == 2


def _site_logits(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A new site: healthy children sit at shipped probability ~0.66 (logit 1.5), pneumonia at logit 5."""
    labels = np.repeat([0, 1], n)
    return rng.normal(np.where(labels == 1, 5.0, 1.5), 1.0), labels


def test_proposal_threshold_is_the_highest_meeting_the_target_with_its_margin() -> None:
    z, y = _site_logits(np.random.default_rng(2), 60)
    aim = site.aimed_sensitivity(0.95, 60)
    assert aim == pytest.approx(0.95 + 0.5 * (0.95 * 0.05 / 60) ** 0.5)
    proposal = site.propose(z, y, 0.95)
    p = site.apply(z, proposal)
    positives = np.sort(p[y == 1])
    assert np.mean(positives >= proposal.threshold) >= aim
    higher = positives[positives > proposal.threshold][0]
    assert np.mean(positives >= higher) < aim
    assert proposal.threshold in positives


def test_the_margin_shrinks_with_the_evidence_and_is_capped() -> None:
    assert site.aimed_sensitivity(0.95, 50) > site.aimed_sensitivity(0.95, 500) > 0.95
    assert site.aimed_sensitivity(0.99, 5) == site.MAX_AIM


def test_proposal_says_when_there_are_too_few() -> None:
    rng = np.random.default_rng(4)
    z, y = _site_logits(rng, 50)
    assert site.propose(z, y, 0.95).enough
    assert not site.propose(z[1:], y[1:], 0.95).enough  # 49 normals
    with pytest.raises(ValueError, match="at least 2 studies of each class"):
        site.propose(z[y == 1], y[y == 1], 0.95)


def test_proposal_expectations_are_cross_fitted() -> None:
    """In-sample, the rule meets its aim by construction; held out, it does not always. The expectations are the
    held-out ones: not the in-sample figures, and equal to cross_fitted's pooled figures."""
    held_out, in_samples = [], []
    for seed in range(10):
        z, y = _site_logits(np.random.default_rng(seed), 60)
        proposal = site.propose(z, y, 0.95, seed=seed)
        in_sample = site.performance(site.apply(z, proposal), y, proposal.threshold)
        assert in_sample.sensitivity.value >= site.aimed_sensitivity(0.95, 60)
        held_out.append((proposal.expected_sensitivity.value, proposal.expected_specificity.value))
        in_samples.append((in_sample.sensitivity.value, in_sample.specificity.value))
    assert sum(h != i for h, i in zip(held_out, in_samples, strict=True)) >= 5
    probs, called = site.cross_fitted(z, y, 0.95, weights=np.ones(y.size), k=site.FOLDS, seed=9)
    assert proposal.expected_sensitivity.value == pytest.approx(called[y == 1].mean())
    assert proposal.expected_specificity.value == pytest.approx(1 - called[y == 0].mean())
    assert proposal.expected_ece == pytest.approx(metrics.expected_calibration_error(probs, y))
    assert (proposal.expected_sensitivity.low, proposal.expected_sensitivity.high) == pytest.approx(
        site.wilson(called[y == 1].sum(), 60)
    )


def test_a_simulated_site_regains_specificity_and_calibration() -> None:
    """Issue 26's acceptance on synthetic logits: the shipped point fails the site's healthy children; a proposal
    on a random 40 % restores specificity and calibration on the other 60 %. (Seeded. Over 300 such draws of the
    external split's size, 234 normals and 390 pneumonia, the held-out sensitivity averaged 0.954 and fell below
    0.93 in 13 % of them with the rule's margin, and in 24 % without it.)"""
    rng = np.random.default_rng(6)
    z, y = _site_logits(rng, 400)
    shipped = site.performance(calibration.probabilities(z, TEMPERATURE), y, SHIPPED_THRESHOLD)
    assert shipped.specificity.value < 0.75 and shipped.ece > 0.15
    accept = rng.permutation(z.size) < 0.4 * z.size
    proposal = site.propose(z[accept], y[accept], 0.95)
    after = site.performance(site.apply(z[~accept], proposal), y[~accept], proposal.threshold)
    assert proposal.enough
    assert after.specificity.value >= 0.9
    assert after.sensitivity.value >= 0.93
    assert after.ece <= 0.05


def test_weighted_threshold_for_sensitivity_by_hand() -> None:
    """Positives 0.1 0.2 0.3 0.4 with weights 3 1 1 1, target 0.5: misses may weigh 3 of 6, so only 0.1 may be
    missed (threshold 0.2); unweighted two of four may be missed (threshold 0.3)."""
    probs, labels = np.array([0.4, 0.1, 0.3, 0.2, 0.9]), np.array([1, 1, 1, 1, 0])
    weights = np.array([1.0, 3.0, 1.0, 1.0, 5.0])
    assert calibration.threshold_for_sensitivity(probs, labels, 0.5, weights) == 0.2
    assert calibration.threshold_for_sensitivity(probs, labels, 0.5) == 0.3
    assert calibration.threshold_for_sensitivity(probs, labels, 0.5, np.ones(5)) == 0.3
