"""The default threshold against the worst simulated shift: for each acquisition shift of worker.ml.data.SHIFTS and a
3.25 px blur (tests/diagnosis/site/test_new_site.py's site), the shipped model's calls on a seeded sample of the
training radiographs (the gate's refusals left out); prints the threshold that maximises the smallest Youden index
over the shifts, and each shift's sensitivity and specificity there and at the card's threshold.

    python -m tools.worst_shift [--data DIR] [--per-class 200] [--seed 11]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from tools.simulate_site import DEFAULT_DATA
from worker.ml import calibration, data
from worker.ml.spec import ModelSpec
from worker.ml.splits import patient_id

MODEL_DIR = Path("worker/ml/models/current")


def sample(train: Path, per_class: int, seed: int) -> list[data.Item]:
    rng = np.random.default_rng(seed)
    items = []
    for label, name in enumerate(("NORMAL", "PNEUMONIA")):
        paths = sorted((train / name).iterdir())
        items += [
            data.Item(paths[i], label, patient_id(paths[i].name))
            for i in sorted(rng.choice(len(paths), per_class, replace=False))
        ]
    return items


def youden(threshold: float, probs: np.ndarray, labels: np.ndarray) -> float:
    called = probs >= threshold
    return float(called[labels == 1].mean() + (~called[labels == 0]).mean() - 1)


def main() -> None:
    from worker.ml.inference import Predictor

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    spec = ModelSpec.load(MODEL_DIR)
    model = Predictor(spec, batch=64)
    items = sample(args.data, args.per_class, args.seed)
    raw, labels = data.load_raw(items), np.array([i.label for i in items])
    shifts = [*data.SHIFTS, ("blur 3.25 px", lambda x: cv2.GaussianBlur(x, (0, 0), 3.25))]
    judged = {}
    for name, shift in shifts:
        logits, features = model.batch_outputs(data.to_inputs(np.stack([shift(x) for x in raw])), 64)
        kept = (
            np.array([r is None for r in model.gate.reasons(features, np.zeros(len(logits)))]) if model.gate else None
        )
        kept = kept if kept is not None else np.ones(len(logits), dtype=bool)
        y = labels[kept]
        if min((y == 0).sum(), (y == 1).sum()) >= 20:  # a shift the gate refuses almost whole says nothing here
            judged[name] = (calibration.probabilities(logits[kept], spec.temperature), y)
    grid = np.linspace(0.05, 0.98, 187)
    worst = [min(youden(t, *judged[n]) for n in judged) for t in grid]
    best = float(grid[int(np.argmax(worst))])
    print(f"worst-case Youden: best threshold {best:.3f} (J {max(worst):.3f}); card {spec.threshold:.3f}")
    for name, (probs, y) in judged.items():
        for t in (spec.threshold, best):
            called = probs >= t
            sens, spec_ = called[y == 1].mean(), (~called[y == 0]).mean()
            print(f"  {name:20s} t={t:.3f} sensitivity {sens:.3f} specificity {spec_:.3f}")


if __name__ == "__main__":
    main()
