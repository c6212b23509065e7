from pathlib import Path

import numpy as np
import pytest

from worker.ml import calibration, metrics

# A tiny set computed by hand:
# probs   0.1 0.4 0.35 0.8 0.7 0.9   labels 0 0 1 1 0 1
# threshold 0.5 -> predictions 0 0 0 1 1 1 -> tn 2, fp 1, fn 1, tp 2
PROBS = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.9])
LABELS = np.array([0, 0, 1, 1, 0, 1])


def test_report_against_hand_computed_values() -> None:
    r = metrics.report(PROBS, LABELS, 0.5)
    assert r.confusion == {"tn": 2, "fp": 1, "fn": 1, "tp": 2}
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.sensitivity == pytest.approx(2 / 3)
    assert r.specificity == pytest.approx(2 / 3)
    # AUC: of the 9 (positive, negative) pairs the positive scores higher in 7.
    # pos 0.35 beats 0.1 only; pos 0.8 beats all three; pos 0.9 beats all three -> 1 + 3 + 3 = 7
    assert r.auc == pytest.approx(7 / 9)
    assert r.n == 6


def test_expected_calibration_error_by_hand() -> None:
    # bins of width 0.1: 0.1->bin0 (conf .1, acc 0); 0.35->bin3 (.35, 1); 0.4->bin3... see below
    probs = np.array([0.05, 0.05, 0.95, 0.95])
    labels = np.array([0, 1, 1, 1])
    # bin 0: conf 0.05, acc 0.5 -> |0.45| * 2; bin 9: conf 0.95, acc 1 -> 0.05 * 2; total / 4 = 0.25
    assert metrics.expected_calibration_error(probs, labels) == pytest.approx(0.25)


def test_threshold_changes_the_labels() -> None:
    low = metrics.report(PROBS, LABELS, 0.3)
    high = metrics.report(PROBS, LABELS, 0.85)
    assert low.sensitivity == 1.0 and low.specificity == pytest.approx(1 / 3)
    assert high.sensitivity == pytest.approx(1 / 3) and high.specificity == 1.0


def test_temperature_changes_probabilities_but_not_their_order() -> None:
    logits = np.array([-3.0, -0.5, 0.5, 4.0])
    sharp = calibration.probabilities(logits, 0.5)
    soft = calibration.probabilities(logits, 2.0)
    assert not np.allclose(sharp, soft)
    assert (np.argsort(sharp) == np.argsort(soft)).all()
    assert sharp[-1] > soft[-1] and sharp[0] < soft[0]


def test_fit_temperature_softens_an_over_confident_model() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000)
    true_logits = (labels * 2 - 1) * 1.0 + rng.normal(0, 1.5, 4000)
    over_confident = true_logits * 4  # four times too sharp
    t = calibration.fit_temperature(over_confident, labels)
    assert 3.0 < t < 5.0
    assert calibration.nll(over_confident, labels, t) < calibration.nll(over_confident, labels, 1.0)


def test_threshold_for_sensitivity_is_the_highest_that_meets_it() -> None:
    probs = np.array([0.2, 0.3, 0.5, 0.6, 0.9, 0.1, 0.4])
    labels = np.array([1, 1, 1, 1, 1, 0, 0])
    t = calibration.threshold_for_sensitivity(probs, labels, 0.8)  # may miss 1 of 5 positives
    assert t == pytest.approx(0.3)
    assert metrics.report(probs, labels, t).sensitivity >= 0.8
    assert metrics.report(probs, labels, t + 1e-6).sensitivity < 0.8


def test_plots_are_written(tmp_path: Path) -> None:
    metrics.plot_roc(PROBS, LABELS, 0.5, tmp_path / "roc.png")
    metrics.plot_reliability(PROBS, LABELS, tmp_path / "rel.png")
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "rel.png").stat().st_size > 1000
