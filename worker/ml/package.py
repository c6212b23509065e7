"""Package trained members into the shipped model: honest validation, calibration, probes, gate, polarity, card.

    python -m worker.ml.package --data ../shared/data/chest_xray --runs RUNS --out worker/ml/models/current \\
        --members A_strong_0,A_strong_1,B_strong_0,B_strong_1 --version pneumonia-mobilenet025-ens4-v2

RUNS holds the `<fold>_<recipe>_<seed>.weights.h5` files of `worker.ml.train`. Each member is scored
only on its own fold's validation (`worker.ml.splits`), as a fold ensemble of that fold's chosen members,
clean and under every kind of `data.SHIFTS`. Temperature (clean + shifted) and threshold (the target
sensitivity on clean) are fitted on those pooled out-of-fold logits; the shipped model averages all members.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from worker.ml import calibration, data, metrics, nonxray, probes, splits
from worker.ml.spec import INPUT_SIZE, INTENDED_POPULATION, LABELS, sha256_file

TARGET_SENSITIVITY = 0.97
GATE_PERCENTILE = 99.5  # of held-out radiographs' distances: a false-rejection budget of about 0.5 %
CAM_SCALE_PERCENTILE = 90  # a PNEUMONIA map reaches full strength at this percentile of validation peaks
# What the card says in words about the model's output, its map, its input and its use.
OUTPUT_RULE = "one logit; P(pneumonia) = sigmoid(logit / temperature); PNEUMONIA when P >= threshold"
HEATMAP_RULE = (
    "PNEUMONIA call: Grad-CAM of the logit over every member's last 14x14 block, positive part, "
    f"divided by cam_scale (the {CAM_SCALE_PERCENTILE}th percentile of validation peaks) and clipped to 1: "
    "the same colour is the same evidence in every study. NORMAL call: no map (no focal evidence)."
)
PREPROCESSING = (
    "decode JPEG/PNG (EXIF orientation, any bit depth; 16-bit windowed on 0.5-99.5 "
    f"percentiles) -> grayscale -> area resize to {INPUT_SIZE}x{INPUT_SIZE} -> the four 20 % corner squares set "
    "to the image's median grey (they hold markers and text, not lung) -> uint8 grey levels"
)
DATA = (
    "Kermany et al. 2018 pediatric chest X-ray (Guangzhou Women and Children's Medical Center), "
    "training split only, 224x224. The standard 624-image test split was never used."
)
INTENDED_USE = (
    "Decision support for pediatric chest radiographs (patients aged 1-5, one hospital). "
    "Supports and does not replace a clinician. Not validated for adults, lateral views, CT or other hospitals."
)


def load_members(runs: Path, names: list[str]) -> list[Any]:
    from worker.ml import model

    members = []
    for name in names:
        member = model.build("mobilenet025")
        member.load_weights(runs / f"{name}.weights.h5")
        members.append(member)
    return members


def analysed(members: list[Any], layer: str) -> Any:
    """A GradCam over the ensemble of `members`, reading `layer` of each."""
    from worker.ml import gradcam, model

    net = model.ensemble(members)
    k = len(members)
    analysis = gradcam.analysis_model(net, model.member_layers(k, layer), model.member_layers(k, model.FEATURES_LAYER))
    return net, gradcam.GradCam(analysis, k)


def score_fold(name: str, members: list[Any], raw: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Out-of-fold logits of one fold's ensemble on its validation: clean, shifted, occluded, and raw CAMs.

    raw: (n, S, S) decoded grey levels; the shifts apply to them, then the serving preprocessing."""
    from worker.ml import model

    net, cam = analysed(members, model.CAM_LAYER)
    _, coarse = analysed(members, model.COARSE_CAM_LAYER)
    t0 = time.time()
    x = data.to_inputs(raw)
    logits, cams, _ = cam.batch(x)

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(net.predict(images[..., None], batch_size=128, verbose=0)[:, 0], dtype=np.float64)

    out = {
        "y": y,
        "logits": logits,
        "cams": cams,
        "cams_coarse": coarse.batch(x)[1],
        "shifted": predict(data.to_inputs(data.shifted_set(raw))),
        "occluded": probes.occluded_logits(predict, x),
    }
    print(f"fold {name}: {len(y)} validation images scored in {time.time() - t0:.0f}s", flush=True)
    return out


def report(probs: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, Any]:
    return metrics.report(probs, y, threshold).as_dict()


def honest_validation(folds: dict[str, dict[str, Any]], target: float) -> dict[str, Any]:
    """Calibrate on the pooled out-of-fold logits and report every view of the honest validation."""
    y = np.concatenate([f["y"] for f in folds.values()])
    z = np.concatenate([f["logits"] for f in folds.values()])
    zs = np.concatenate([f["shifted"] for f in folds.values()])
    ys = np.concatenate([np.tile(f["y"], len(data.SHIFTS)) for f in folds.values()])
    temperature = calibration.fit_temperature(np.r_[z, zs], np.r_[y, ys])
    p = calibration.probabilities(z, temperature)
    threshold = calibration.threshold_for_sensitivity(p, y, target)
    per_fold = {
        name: report(calibration.probabilities(f["logits"], temperature), f["y"], threshold)
        for name, f in folds.items()
    }
    per_shift = {}
    for kind, (shift, _) in enumerate(data.SHIFTS):
        zk = np.concatenate([np.split(f["shifted"], len(data.SHIFTS))[kind] for f in folds.values()])
        per_shift[shift] = report(calibration.probabilities(zk, temperature), y, threshold)
    occluded = {k: np.concatenate([f["occluded"][k] for f in folds.values()]) for k in ("none", "corners", "frame")}
    cams = np.concatenate([f["cams"] for f in folds.values()])
    called = p >= threshold
    peaks = cams.reshape(len(cams), -1).max(axis=1)
    cam_scale = float(np.percentile(peaks[called], CAM_SCALE_PERCENTILE))
    probe = probes.occlusion_report(occluded, temperature, threshold, cams, INPUT_SIZE)
    coarse = np.concatenate([f["cams_coarse"] for f in folds.values()])
    probe["cam_border_mass_median_7x7"] = float(np.nanmedian(probes.border_mass(coarse[called], INPUT_SIZE)))
    return {
        "temperature": temperature,
        "threshold": threshold,
        "cam_scale": cam_scale,
        "pooled": report(p, y, threshold),
        "folds": per_fold,
        "shifted": report(calibration.probabilities(zs, temperature), ys, threshold),
        "per_shift": per_shift,
        "probes": probe,
        "_probs": p,
        "_y": y,
    }


def fit_gate(net: Any, feats_of: Any, x_train: np.ndarray, radiographs: np.ndarray, out: Path) -> dict[str, Any]:
    import cv2

    from worker.ml import gate, pixels, preprocessing

    # Mean and covariance from the training radiographs; the limit from one half of the held-out radiographs
    # (honest validation, clean and shifted); the false-rejection rate is measured on the other half.
    radiograph_feats = feats_of(radiographs)
    g = gate.with_limit(gate.fit(feats_of(x_train)), radiograph_feats[0::2], GATE_PERCENTILE, margin=1.0)
    g.save(out / "gate.npz")
    others = list(nonxray.images(300))
    gray_others = np.stack([preprocessing.model_input(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)) for img in others])
    chroma = np.array([pixels.chroma_of(img) for img in others])
    other_feats = feats_of(gray_others)
    return {
        "file": "gate.npz",
        "sha256": sha256_file(out / "gate.npz"),
        "max_distance": g.max_distance,
        "max_chroma": g.max_chroma,
        "method": "colour saturation, then Mahalanobis distance of the members' pooled features (Ledoit-Wolf), "
        f"limit the {GATE_PERCENTILE}th percentile of the distances of half the held-out validation radiographs "
        "(clean and shifted), never set on non-radiographs",
        "validation_radiographs_rejected": float(
            g.rejected(radiograph_feats[1::2], np.zeros(len(radiographs) // 2)).mean()
        ),
        "validation_radiographs_n": len(radiographs) // 2,
        "non_radiographs_rejected": float(g.rejected(other_feats, chroma).mean()),
        "non_radiographs_as_grayscale_rejected": float(g.rejected(other_feats, np.zeros(len(others))).mean()),
        "non_radiographs_n": len(others),
    }


def fit_polarity(x_train: np.ndarray, radiographs: np.ndarray, out: Path) -> dict[str, Any]:
    from worker.ml import polarity

    detector = polarity.fit(x_train)
    detector.save(out / "polarity.npz")
    upright = detector.p_inverted(radiographs) >= 0.5
    inverted = detector.p_inverted(255 - radiographs) >= 0.5
    return {
        "file": "polarity.npz",
        "sha256": sha256_file(out / "polarity.npz"),
        "method": "logistic regression (no intercept) on the 16x16 downsampled, per-image standardised input",
        "fitted_on": "fold A training images and their negatives",
        "validation_n": len(radiographs),
        "upright_rejected": float(upright.mean()),
        "inverted_rejected": float(inverted.mean()),
    }


def arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--runs", type=Path, required=True)
    p.add_argument("--members", required=True, help="comma-separated run names, e.g. A_strong_0,B_strong_0")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--target-sensitivity", type=float, default=TARGET_SENSITIVITY)
    p.add_argument("--stride", type=int, default=1, help="keep every n-th training image (a quick smoke run)")
    p.add_argument("--gate-only", action="store_true", help="refit only the gate and polarity of a packaged OUT")
    return p.parse_args(argv)


def official_val(cam: Any, folder: Path, threshold: float, temperature: float) -> dict[str, Any]:
    """The 16 images of the official validation folder, scored once: the report, the files, the probabilities."""
    items = data.list_folder(folder)
    images, _ = data.load_inputs(items)
    labels = np.array([i.label for i in items])
    probs = calibration.probabilities(logits_of(cam, images), temperature)
    return {
        **report(probs, labels, threshold),
        "files": [i.path.name for i in items],
        "probabilities": [round(float(v), 5) for v in probs],
    }


def score_folds(
    runs: Path, chosen: list[str], raw: np.ndarray, y: np.ndarray, names: list[str]
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Each fold's chosen members, loaded, and their scores on that fold's validation images."""
    folds, members_by_fold = {}, {}
    for name in splits.FOLDS:
        split = splits.fold(name, names, y.tolist())
        members_by_fold[name] = load_members(runs, [m for m in chosen if m.startswith(f"{name}_")])
        folds[name] = score_fold(name, members_by_fold[name], raw[split.validation], y[split.validation])
    return folds, members_by_fold


def plot_validation(honest: dict[str, Any], out: Path) -> None:
    """The honest validation's ROC and reliability plots; its probabilities and labels leave `honest` here."""
    probs, yv = honest.pop("_probs"), honest.pop("_y")
    metrics.plot_roc(probs, yv, honest["threshold"], out / "validation_roc.png")
    metrics.plot_reliability(probs, yv, out / "validation_reliability.png")


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)

    from worker.ml import model

    start = time.time()
    items = data.list_folder(args.data / "train")[:: args.stride]
    raw = data.load_raw(items)
    x = data.to_inputs(raw)
    y = np.array([i.label for i in items])
    names = [i.path.name for i in items]
    if args.gate_only:
        refit_side_files(args.out, raw, x, y, names)
        return
    chosen = args.members.split(",")
    folds, members_by_fold = score_folds(args.runs, chosen, raw, y, names)
    honest = honest_validation(folds, args.target_sensitivity)
    print(json.dumps({k: v for k, v in honest.items() if not k.startswith("_")}, indent=1), flush=True)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    members = [m for name in splits.FOLDS for m in members_by_fold[name]]
    net, cam = analysed(members, model.CAM_LAYER)
    net.save(out / "model.keras")
    plot_validation(honest, out)

    polarity_x, radiographs = side_data(raw, x, y, names)
    official = official_val(cam, args.data / "val", honest["threshold"], honest["temperature"])
    training_log = args.runs / "training.json"
    card = {
        "version": args.version,
        "weights_file": "model.keras",
        "sha256": sha256_file(out / "model.keras"),
        "arch": f"ensemble of {len(members)} MobileNet 0.25 (ImageNet start), mean logit",
        "members": chosen,
        "conv_layers": model.member_layers(len(members), model.CAM_LAYER),
        "feature_layers": model.member_layers(len(members), model.FEATURES_LAYER),
        "input_size": INPUT_SIZE,
        "labels": list(LABELS),
        "output": OUTPUT_RULE,
        "temperature": honest["temperature"],
        "threshold": honest["threshold"],
        "target_sensitivity": args.target_sensitivity,
        "cam_scale": honest["cam_scale"],
        "heatmap_rule": HEATMAP_RULE,
        "intended_population": INTENDED_POPULATION,
        "preprocessing": PREPROCESSING,
        "honest_validation": honest,
        "official_val_16": official,
        "gate": fit_gate(net, lambda images: cam.batch(images)[2], x, radiographs, out),
        "polarity": fit_polarity(polarity_x, radiographs, out),
        "training": json.loads(training_log.read_text()) if training_log.exists() else {},
        "data": DATA,
        "intended_use": INTENDED_USE,
        "packaged_seconds": round(time.time() - start),
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    from worker.ml import litert_export  # the CPU worker's model: converted, and checked against model.keras

    card["litert"] = litert_export.export(out, args.data)
    print(
        json.dumps(
            {k: card[k] for k in ("version", "temperature", "threshold", "gate", "polarity", "litert")}, indent=1
        )
    )


def side_data(raw: np.ndarray, x: np.ndarray, y: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(fold A's training inputs for the polarity fit, held-out radiographs: clean + a third of the shifts)."""
    held = np.concatenate([splits.fold(n, names, y.tolist()).validation for n in splits.FOLDS])
    radiographs = np.concatenate([x[held], data.to_inputs(data.shifted_set(raw[held])[::3])])
    return x[splits.fold("A", names, y.tolist()).train], radiographs


def refit_side_files(out: Path, raw: np.ndarray, x: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    import keras

    from worker.ml import gradcam

    card = json.loads((out / "card.json").read_text())
    net = keras.models.load_model(out / "model.keras", compile=False)
    cam = gradcam.GradCam(
        gradcam.analysis_model(net, card["conv_layers"], card["feature_layers"]), len(card["conv_layers"])
    )
    polarity_x, radiographs = side_data(raw, x, y, names)
    card["gate"] = fit_gate(net, lambda images: cam.batch(images)[2], x, radiographs, out)
    card["polarity"] = fit_polarity(polarity_x, radiographs, out)
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps({k: card[k] for k in ("gate", "polarity")}, indent=1))


def logits_of(cam: Any, images: np.ndarray) -> np.ndarray:
    return np.asarray(cam.batch(images)[0])


if __name__ == "__main__":
    main()
