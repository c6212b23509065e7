"""Write the model card's monitoring reference: what the shipped model's outputs look like on the population it was
built for, so a site's drift can be measured against it (diagnosis.site.monitoring).

The reference is the shipped model's P(pneumonia) at the card's own point (sigmoid(logit / T)) on every radiograph
of the Kermany training and validation folders: its histogram (worker.ml.drift.BINS equal bins of 0-1), the share
called PNEUMONIA at the card's threshold, and n. These images are the ones the model was fitted on, so the
reference is sharper than any new site's outputs: the drift rules err towards alerting, never towards silence.

    python -m tools.model_reference [--data DIR] [--model worker/ml/models/current]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tools.simulate_site import DEFAULT_DATA, logits_of
from worker.ml import calibration, data, drift
from worker.ml.spec import ModelSpec
from worker.ml.splits import patient_id

KEY = "monitoring_reference"


def items_of(folders: list[Path]) -> list[data.Item]:
    found = []
    for folder in folders:
        for label, name in enumerate(("NORMAL", "PNEUMONIA")):
            paths = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in data.IMAGE_SUFFIXES)
            found += [data.Item(p, label, patient_id(p.name)) for p in paths]
    return found


def reference(spec: ModelSpec, folders: list[Path]) -> dict[str, object]:
    items = items_of(folders)
    probs = calibration.probabilities(logits_of(items, spec), spec.temperature)
    return {
        "source": "the shipped model on the Kermany training and validation radiographs (in-sample)",
        "n": int(probs.size),
        "probability_histogram": [round(f, 6) for f in drift.reference_histogram(probs)],
        "positive_rate": round(float(np.mean(probs >= spec.threshold)), 6),
        "rejection_rate": 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA.parent)
    parser.add_argument("--model", type=Path, default=Path("worker/ml/models/current"))
    args = parser.parse_args()
    spec = ModelSpec.load(args.model)
    folders = [args.data / "train", args.data / "val"]
    card_path = args.model / "card.json"
    card = json.loads(card_path.read_text())
    card[KEY] = reference(spec, [f for f in folders if f.is_dir()])
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card[KEY], indent=2))


if __name__ == "__main__":
    main()
