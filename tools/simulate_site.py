"""Simulate a new site from the training data and print what its own operating point changes.

The site: every `NORMAL2-` image of train/NORMAL (one acquisition family) plus as many pneumonia images drawn at
random (seeded) from train/PNEUMONIA, scored by the shipped model exactly as evaluation scores them. A seeded
random 40 % of the site's patients is its acceptance set; the proposal (worker.ml.site.PROPOSAL_RULE) is built on
it, and the other 60 % are judged before (the card's point) and after (the site's point).

The model was trained on these images, and none of the acquisition shifts of worker.ml.data moves its normals
far (the worst, blur and noise, leaves specificity 0.935 on this family). So the script also reproduces the
condition measured on the external split: the normals' logits are moved by one constant so that their median
shipped probability is --normals-at (default 0.3), keeping the shape of their real distribution; the drift
rules then compare that site's outputs with the unmoved ones as the reference.

    python -m tools.simulate_site [--data DIR] [--target 0.95] [--seed 0] [--normals-at 0.3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from worker.ml import calibration, data, drift, site
from worker.ml.spec import ModelSpec
from worker.ml.splits import patient_id

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chest_xray" / "train"
MODEL_DIR = Path("worker/ml/models/current")
FAMILY = "NORMAL2-"


def site_items(train: Path, seed: int) -> list[data.Item]:
    """The family's normals and as many seeded random pneumonia images, as data.Items (label 0 / 1)."""
    normals = sorted(p for p in (train / "NORMAL").iterdir() if p.name.startswith(FAMILY))
    pneumonia = sorted(p for p in (train / "PNEUMONIA").iterdir() if p.suffix.lower() in data.IMAGE_SUFFIXES)
    chosen = np.random.default_rng(seed).choice(len(pneumonia), size=len(normals), replace=False)
    return [data.Item(p, 0, patient_id(p.name)) for p in normals] + [
        data.Item(pneumonia[i], 1, patient_id(pneumonia[i].name)) for i in sorted(chosen)
    ]


def logits_of(items: list[data.Item], spec: ModelSpec, batch: int = 64) -> np.ndarray:
    """(n,) logits of the shipped model through the serving preprocessing (as worker.ml.evaluate)."""
    from worker.ml.inference import Predictor

    inputs, _ = data.load_inputs(items)
    return Predictor(spec, batch=batch).batch_outputs(inputs, batch)[0]


def acceptance_mask(items: list[data.Item], share: float, seed: int) -> np.ndarray:
    """(n,) bool: the images of a seeded random `share` of the patients (no patient on both sides)."""
    patients = sorted({i.patient for i in items})
    rng = np.random.default_rng(seed)
    chosen = {p for p, u in zip(patients, rng.random(len(patients)), strict=True) if u < share}
    return np.array([i.patient in chosen for i in items])


def line(name: str, perf: site.Performance) -> str:
    def fmt(p: site.Proportion) -> str:
        return f"{p.value:.3f} [{p.low:.3f}, {p.high:.3f}]"

    return (
        f"{name:<34} n {perf.n_negative}/{perf.n_positive}  sensitivity {fmt(perf.sensitivity)}  "
        f"specificity {fmt(perf.specificity)}  ECE {perf.ece:.3f}  AUC {perf.auc:.3f}"
    )


def report(z: np.ndarray, y: np.ndarray, accept: np.ndarray, spec: ModelSpec, target: float) -> None:
    shipped = calibration.probabilities(z, spec.temperature)
    print(line("shipped point, whole site", site.performance(shipped, y, spec.threshold)))
    print(line("shipped point, held-out 60 %", site.performance(shipped[~accept], y[~accept], spec.threshold)))
    proposal = site.propose(z[accept], y[accept], target)
    p = proposal
    print(
        f"proposal on the 40 % (n {p.n_negative}/{p.n_positive}, enough {p.enough}): threshold {p.threshold:.4f}, "
        f"Platt a {p.platt_a:.4f} b {p.platt_b:.4f} (shipped a {1 / spec.temperature:.4f} b 0); expects "
        f"sensitivity {p.expected_sensitivity.value:.3f} [{p.expected_sensitivity.low:.3f}, "
        f"{p.expected_sensitivity.high:.3f}], specificity {p.expected_specificity.value:.3f} "
        f"[{p.expected_specificity.low:.3f}, {p.expected_specificity.high:.3f}], ECE {p.expected_ece:.3f}"
    )
    after = site.performance(site.apply(z[~accept], proposal), y[~accept], proposal.threshold)
    print(line("site's point, held-out 60 %", after))
    normals = shipped[y == 0]
    print(f"median shipped P(pneumonia) of the site's normals: {np.median(normals):.3f}")


def normals_moved(z: np.ndarray, y: np.ndarray, temperature: float, median_p: float) -> np.ndarray:
    """(n,) logits with the normals' (y == 0) moved by one constant so their median sigmoid(z / T) is median_p."""
    offset = temperature * float(np.log(median_p / (1.0 - median_p))) - float(np.median(z[y == 0]))
    return np.where(y == 0, z + offset, z)


def drift_check(reference_z: np.ndarray, z: np.ndarray, spec: ModelSpec) -> None:
    before, now = (calibration.probabilities(v, spec.temperature) for v in (reference_z, z))
    rate = float(np.mean(before >= spec.threshold))
    reference = drift.reference_histogram(before)
    current = drift.histogram(now)
    print(f"drift: PSI {drift.psi(reference, current):.3f}, JS {drift.js_distance(reference, current):.3f}")
    for alert in drift.output_alerts(reference, rate, before.size, now, now >= spec.threshold):
        print(f"  alert {alert.kind} {alert.level}: {alert.message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--normals-at", type=float, default=0.3)
    args = parser.parse_args()
    spec = ModelSpec.load(MODEL_DIR)
    items = site_items(args.data, args.seed)
    start = time.perf_counter()
    z = logits_of(items, spec)
    y = np.array([i.label for i in items])
    accept = acceptance_mask(items, 0.4, args.seed)
    print(
        f"site: {int((y == 0).sum())} {FAMILY}* normals + {int(y.sum())} pneumonia, scored in "
        f"{time.perf_counter() - start:.0f} s by {spec.version}"
    )
    print("== as scored (training images: the shipped point holds)")
    report(z, y, accept, spec, args.target)
    print(f"== the site's normals moved to median shipped P {args.normals_at} (the external split's condition)")
    moved = normals_moved(z, y, spec.temperature, args.normals_at)
    report(moved, y, accept, spec, args.target)
    drift_check(z, moved, spec)
    print("rule:", site.PROPOSAL_RULE)
    print("drift rules:", drift.DRIFT_RULES)


if __name__ == "__main__":
    main()
