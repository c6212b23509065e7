"""The rules of worker.ml.drift: PSI and Jensen-Shannon by hand, the rate test, and the documented alert
thresholds (they fire at the threshold and not below)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worker.ml import calibration, drift


def test_reference_histogram_is_ten_fractions() -> None:
    h = drift.reference_histogram(np.array([0.0, 0.05, 0.15, 0.95, 1.0]))
    assert h == pytest.approx([0.4, 0.2, 0, 0, 0, 0, 0, 0, 0, 0.4])
    assert all(isinstance(v, float) for v in h)


def test_psi_and_js_of_identical_histograms_are_zero() -> None:
    h = [0.1, 0.2, 0.3, 0.0, 0.4]
    assert drift.psi(h, h) == pytest.approx(0.0, abs=1e-12)
    assert drift.js_distance(h, h) == pytest.approx(0.0, abs=1e-6)
    assert drift.psi(h, [2 * v for v in h]) == pytest.approx(0.0, abs=1e-12)  # counts or fractions alike


def test_psi_of_a_known_shift_by_hand() -> None:
    # r = (0.5, 0.5), c = (0.25, 0.75): (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    by_hand = 0.25 * math.log(2.0) + 0.25 * math.log(1.5)  # 0.27465
    assert drift.psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(by_hand, rel=1e-3)


def test_js_distance_of_a_known_shift_by_hand() -> None:
    # m = (0.375, 0.625); JS divergence = (KL(r || m) + KL(c || m)) / 2 in bits; distance = its square root
    kl_r = 0.5 * math.log2(0.5 / 0.375) + 0.5 * math.log2(0.5 / 0.625)
    kl_c = 0.25 * math.log2(0.25 / 0.375) + 0.75 * math.log2(0.75 / 0.625)
    assert drift.js_distance([0.5, 0.5], [0.25, 0.75]) == pytest.approx(math.sqrt((kl_r + kl_c) / 2))
    assert drift.js_distance([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)


def test_histograms_must_match() -> None:
    with pytest.raises(ValueError):
        drift.psi([0.5, 0.5], [0.2, 0.3, 0.5])


def test_rate_change_by_hand() -> None:
    # 300/1000 against 350/1000: pooled 0.325, se = sqrt(0.325 * 0.675 * 2 / 1000)
    change = drift.rate_change(300, 1000, 350, 1000)
    z = 0.05 / math.sqrt(0.325 * 0.675 * 0.002)
    assert change.difference == pytest.approx(0.05)
    assert change.z == pytest.approx(z)
    assert change.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))


@pytest.mark.parametrize(
    ("psi", "js", "expected"),
    [
        (0.0999, 0.0999, []),
        (drift.PSI_WATCH, 0.0, [("psi", "watch", drift.PSI_WATCH)]),
        (0.2499, 0.0, [("psi", "watch", drift.PSI_WATCH)]),
        (drift.PSI_ACT, 0.0, [("psi", "act", drift.PSI_ACT)]),
        (0.0, drift.JS_WATCH, [("js", "watch", drift.JS_WATCH)]),
    ],
)
def test_distribution_alerts_fire_at_the_documented_thresholds(
    psi: float, js: float, expected: list[tuple[str, str, float]]
) -> None:
    assert (drift.PSI_WATCH, drift.PSI_ACT, drift.JS_WATCH) == (0.1, 0.25, 0.1)
    assert [(a.kind, a.level, a.threshold) for a in drift.distribution_alerts(psi, js)] == expected


@pytest.mark.parametrize(
    ("current_hits", "current_n", "expected"),
    [
        (698, 2000, []),  # +0.049: below the watch threshold
        (700, 2000, [("watch", 0.05)]),  # +0.05, p = 0.006
        (800, 2000, [("act", 0.10)]),
        (400, 2000, [("act", 0.10)]),  # a fall counts too
        (20, 50, []),  # +0.10 but on 50 studies p = 0.12: not significant
    ],
)
def test_rate_alerts_fire_at_the_documented_thresholds(
    current_hits: int, current_n: int, expected: list[tuple[str, float]]
) -> None:
    assert (drift.RATE_WATCH, drift.RATE_ACT, drift.RATE_ALPHA) == (0.05, 0.10, 0.01)
    alerts = drift.rate_alerts("positive_rate", drift.rate_change(300, 1000, current_hits, current_n))
    assert [(a.level, a.threshold) for a in alerts] == expected


def _outputs(rng: np.random.Generator, normal_logit: float, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.random(n) < 0.5
    return calibration.sigmoid(rng.normal(np.where(labels, 4.0, normal_logit), 1.0)), labels


def test_a_site_whose_healthy_children_sit_at_03_fires_an_alert() -> None:
    """Reference: healthy children near P 0.02; the site's near 0.3 (logit -0.85). Same prevalence, so the rule
    that fires is the distribution's, not the positive rate's."""
    rng = np.random.default_rng(0)
    ref_probs, _ = _outputs(rng, -4.0, 4000)
    reference = drift.reference_histogram(ref_probs)
    same, _ = _outputs(rng, -4.0)
    assert drift.output_alerts(reference, 0.5, 4000, same, same >= 0.5) == []
    shifted, _ = _outputs(rng, -0.85)
    alerts = drift.output_alerts(reference, 0.5, 4000, shifted, shifted >= 0.7)
    assert ("psi", "act") in [(a.kind, a.level) for a in alerts]
    assert all(a.message for a in alerts)


def test_no_alerts_below_the_minimum() -> None:
    reference = [0.1] * 10
    few = np.full(drift.MIN_CURRENT - 1, 0.95)
    assert drift.output_alerts(reference, 0.1, 1000, few, few >= 0.5) == []
    assert drift.output_alerts(reference, 0.1, 1000, np.append(few, 0.95), np.ones(drift.MIN_CURRENT, bool))
