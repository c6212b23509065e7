"""Train, compare, calibrate and package the pneumonia classifier.

    python -m worker.ml.train --data ../shared/data/chest_xray --out worker/ml/models/current

Trains each candidate architecture on a patient-level split of DATA/train, scores it on the validation
patients and on shifted copies of them (gamma, contrast, crop, border, blur), keeps the best by the
shifted-validation AUC, fits temperature and threshold on validation, fits the not-a-radiograph gate,
and writes model.keras, gate.npz and card.json (the model card) to OUT.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.ml import calibration, data, metrics, nonxray
from worker.ml.spec import INTENDED_POPULATION, LABELS, sha256_file

DEFAULT_WEIGHTS = Path("../shared/weights/mobilenet_2_5_224_tf_no_top.h5")


@dataclass
class Splits:
    train_x: np.ndarray  # (n, 224, 224) uint8 model inputs
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    hard_x: np.ndarray
    hard_y: np.ndarray
    patients: dict[str, int]


def load_splits(root: Path, val_fraction: float, seed: int) -> Splits:
    items = data.list_folder(root / "train")
    train_items, val_items = data.patient_split(items, val_fraction, seed)
    print(f"train {len(train_items)} images, validation {len(val_items)} images (patient-level split)")
    val_raw = data.load_gray(val_items)
    val_y = np.array([i.label for i in val_items], dtype=np.float32)
    return Splits(
        train_x=data.to_model_inputs(data.load_gray(train_items)),
        train_y=np.array([i.label for i in train_items], dtype=np.float32),
        val_x=data.to_model_inputs(val_raw),
        val_y=val_y,
        hard_x=data.to_model_inputs(np.stack(list(data.shifted_set(val_raw)))),
        hard_y=np.tile(val_y, 6),
        patients={
            "train": len({i.patient for i in train_items}),
            "validation": len({i.patient for i in val_items}),
        },
    )


def train_one(arch: str, s: Splits, args: argparse.Namespace, workdir: Path) -> Any:
    import keras

    from worker.ml import augment, model

    keras.utils.set_random_seed(args.seed)
    net = model.build(arch, imagenet_weights=str(args.weights))
    net.compile(
        optimizer=keras.optimizers.AdamW(args.lr, weight_decay=1e-4),
        loss=keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.05),
        metrics=[keras.metrics.AUC(name="auc", from_logits=True), keras.metrics.BinaryAccuracy(threshold=0.0)],
    )
    pos = s.train_y.mean()
    class_weight = {0: 0.5 / (1 - pos), 1: 0.5 / pos}
    val_x = np.concatenate([s.val_x, s.hard_x])[..., None]
    val_y = np.concatenate([s.val_y, s.hard_y])
    workdir.mkdir(parents=True, exist_ok=True)
    net.fit(
        augment.pipeline(s.train_x, s.train_y, args.batch, args.seed),
        validation_data=(val_x, val_y),
        epochs=args.epochs,
        class_weight=class_weight,
        verbose=args.verbose,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=3, restore_best_weights=True),
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=2),
            keras.callbacks.CSVLogger(str(workdir / f"{arch}_log.csv")),
        ],
    )
    return net


def logits_of(net: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(net.predict(x[..., None], batch_size=64, verbose=0)[:, 0], dtype=np.float64)


def score(net: Any, s: Splits, target: float) -> dict[str, Any]:
    val_logits, hard_logits = logits_of(net, s.val_x), logits_of(net, s.hard_x)
    # Temperature on clean + shifted validation, so that probabilities are not as over-confident as the clean
    # split alone would make them; threshold: the highest that keeps the target sensitivity on clean validation
    # (the best specificity that target allows; errors on new hospitals are mostly normals called pneumonia).
    temperature = calibration.fit_temperature(
        np.concatenate([val_logits, hard_logits]), np.concatenate([s.val_y, s.hard_y])
    )
    threshold = calibration.threshold_for_sensitivity(
        calibration.probabilities(val_logits, temperature), s.val_y, target
    )
    return {
        "temperature": temperature,
        "threshold": threshold,
        "validation": metrics.report(calibration.probabilities(val_logits, temperature), s.val_y, threshold).as_dict(),
        "shifted_validation": metrics.report(
            calibration.probabilities(hard_logits, temperature), s.hard_y, threshold
        ).as_dict(),
        "_val_probs": calibration.probabilities(val_logits, temperature),
    }


def fit_gate(net: Any, s: Splits, out: Path) -> dict[str, Any]:
    import cv2
    import keras

    from worker.ml import gate, model, preprocessing

    feats = keras.Model(net.inputs, net.get_layer(model.FEATURES_LAYER).output)
    g = gate.fit(feats.predict(s.train_x[..., None], batch_size=64, verbose=0))
    g.save(out / "gate.npz")

    def rejected(x: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        return g.rejected(feats.predict(x[..., None], batch_size=64, verbose=0), chroma)

    others = list(nonxray.images(300))
    other_x = np.stack([preprocessing.model_input(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)) for img in others])
    other_chroma = np.array([preprocessing.chroma_of(img) for img in others])
    return {
        "file": "gate.npz",
        "sha256": sha256_file(out / "gate.npz"),
        "max_distance": g.max_distance,
        "max_chroma": g.max_chroma,
        "method": "colour saturation, then Mahalanobis distance of pooled features (Ledoit-Wolf)",
        "validation_radiographs_rejected": float(rejected(s.val_x, np.zeros(len(s.val_x))).mean()),
        "shifted_validation_radiographs_rejected": float(rejected(s.hard_x, np.zeros(len(s.hard_x))).mean()),
        "non_radiographs_rejected": float(rejected(other_x, other_chroma).mean()),
        "non_radiographs_n": len(others),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="folder holding train/NORMAL and train/PNEUMONIA")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--arch", nargs="+", default=["mobilenet025", "mobilenet025_scratch"])
    p.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="ImageNet MobileNet 0.25 weights (.h5)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--target-sensitivity", type=float, default=0.97)
    p.add_argument("--version", default=time.strftime("pneumonia-%Y%m%d"))
    p.add_argument("--package-only", action="store_true", help="score and package already-trained candidates")
    p.add_argument("--verbose", default="auto", help="Keras verbosity: auto (progress bar), 1, 2 (a line per epoch)")
    args = p.parse_args(argv)
    args.verbose = args.verbose if args.verbose == "auto" else int(args.verbose)

    import keras

    splits = load_splits(args.data, args.val_fraction, args.seed)
    work = args.out / "candidates"
    results: dict[str, dict[str, Any]] = {}
    for arch in args.arch:
        if not args.package_only:
            start = time.time()
            trained = train_one(arch, splits, args, work)
            trained.save(work / f"{arch}.keras")
            (work / f"{arch}.json").write_text(json.dumps({"train_seconds": round(time.time() - start, 1)}))
        net = keras.models.load_model(work / f"{arch}.keras", compile=False)
        results[arch] = {
            **score(net, splits, args.target_sensitivity),
            **json.loads((work / f"{arch}.json").read_text()),
            "params": int(net.count_params()),
        }
        print(f"{arch}: validation {results[arch]['validation']}\n  shifted {results[arch]['shifted_validation']}")
    best = max(results, key=lambda a: results[a]["shifted_validation"]["auc"])
    package(best, results, splits, args)


def package(best: str, results: dict[str, dict[str, Any]], s: Splits, args: argparse.Namespace) -> None:
    import keras

    from worker.ml import model

    out: Path = args.out
    # Loaded uncompiled and saved again: the shipped file carries no optimizer state (a third of the size).
    net = keras.models.load_model(out / "candidates" / f"{best}.keras", compile=False)
    net.save(out / "model.keras")
    chosen = results[best]
    val_probs = chosen.pop("_val_probs")
    metrics.plot_roc(val_probs, s.val_y, chosen["threshold"], out / "validation_roc.png")
    metrics.plot_reliability(val_probs, s.val_y, out / "validation_reliability.png")
    for r in results.values():
        r.pop("_val_probs", None)
    card = {
        "version": args.version,
        "weights_file": "model.keras",
        "sha256": sha256_file(out / "model.keras"),
        "arch": best,
        "conv_layer": model.LAST_CONV[best],
        "input_size": 224,
        "labels": list(LABELS),
        "output": "one logit; P(pneumonia) = sigmoid(logit / temperature); PNEUMONIA when P >= threshold",
        "temperature": chosen["temperature"],
        "threshold": chosen["threshold"],
        "target_sensitivity": args.target_sensitivity,
        "intended_population": INTENDED_POPULATION,
        "preprocessing": "decode JPEG/PNG (EXIF orientation, any bit depth; 16-bit windowed on 0.5-99.5 "
        "percentiles) -> grayscale -> area resize to 224x224 -> CLAHE (clip 2.0, 8x8 tiles) -> uint8 values",
        "validation": chosen["validation"],
        "shifted_validation": chosen["shifted_validation"],
        "candidates": results,
        "gate": fit_gate(net, s, out),
        "training": {
            "command": f"python -m worker.ml.train --data {args.data} --out {out} --arch {' '.join(args.arch)} "
            f"--epochs {args.epochs} --seed {args.seed} --version {args.version}",
            "seed": args.seed,
            "epochs_max": args.epochs,
            "batch": args.batch,
            "optimizer": f"AdamW lr {args.lr} weight decay 1e-4, ReduceLROnPlateau, early stopping on validation AUC",
            "loss": "binary cross-entropy on the logit, label smoothing 0.05, balanced class weights",
            "augmentation": "rotation 4%, zoom -25..+12%, shift 6%, gamma exp(+-0.45), contrast 0.65-1.35, "
            "brightness +-0.1, Gaussian noise; no flips",
            "patients": s.patients,
            "images": {"train": len(s.train_y), "validation": len(s.val_y), "shifted_validation": len(s.hard_y)},
        },
        "data": "Kermany et al. 2018 pediatric chest X-ray (Guangzhou Women and Children's Medical Center), "
        "training split only, resized to 224x224; validation is a patient-level split of it. The standard "
        "624-image test split was never used.",
        "intended_use": "Decision support for pediatric chest radiographs (patients aged 1-5, one hospital). "
        "Supports and does not replace a clinician. Not validated for adults, lateral views, CT or other hospitals.",
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: card[k]
                for k in ("version", "arch", "temperature", "threshold", "validation", "shifted_validation", "gate")
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
