"""Evaluate the shipped model on any labelled folder (DIR/NORMAL, DIR/PNEUMONIA) with exactly the serving
preprocessing, temperature and threshold. Writes JSON, a ROC curve and a reliability diagram, and runs the
shortcut probe (`worker.ml.probes`): occlusion of corners and frame, and Grad-CAM mass in the frame.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from worker.ml import calibration, data, metrics, probes
from worker.ml.spec import ModelSpec


def evaluate(spec: ModelSpec, folder: Path, out_json: Path, batch: int = 64) -> dict[str, Any]:
    from worker.ml.inference import Predictor

    start = time.perf_counter()
    predictor = Predictor(spec)
    items = data.list_folder(folder)
    if not items:
        raise ValueError(f"no images under {folder}/NORMAL or {folder}/PNEUMONIA")
    labels = np.array([i.label for i in items])
    inputs, chroma = data.load_inputs(items)
    logits, cams, features = predictor.gradcam.batch(inputs, batch)
    probs = calibration.probabilities(logits, spec.temperature)
    rep = metrics.report(probs, labels, spec.threshold)
    occluded = probes.occluded_logits(lambda x: predictor.batch_outputs(x, batch)[0], inputs)
    probe = probes.occlusion_report(occluded, spec.temperature, spec.threshold, cams, spec.input_size)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    stem = out_json.with_suffix("")
    metrics.plot_roc(probs, labels, spec.threshold, Path(f"{stem}_roc.png"))
    metrics.plot_reliability(probs, labels, Path(f"{stem}_reliability.png"))
    gate_rejected = 0
    if predictor.gate is not None:
        gate_rejected = int(predictor.gate.rejected(features, chroma).sum())
    polarity_rejected = 0
    if predictor.polarity is not None:
        polarity_rejected = int((predictor.polarity.p_inverted(inputs) >= 0.5).sum())
    result: dict[str, Any] = {
        **rep.as_dict(),
        "confusion_matrix": [[rep.confusion["tn"], rep.confusion["fp"]], [rep.confusion["fn"], rep.confusion["tp"]]],
        "confusion_matrix_layout": "rows true NORMAL, PNEUMONIA; columns predicted NORMAL, PNEUMONIA",
        "model_version": spec.version,
        "temperature": spec.temperature,
        "data": str(folder),
        "gate_rejected": gate_rejected,
        "polarity_rejected": polarity_rejected,
        **probe,
        "seconds": round(time.perf_counter() - start, 1),
        "roc_png": f"{stem.name}_roc.png",
        "reliability_png": f"{stem.name}_reliability.png",
    }
    out_json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def table(result: dict[str, Any]) -> str:
    rows = [
        ("images", f"{result['n']}"),
        ("accuracy", f"{result['accuracy']:.4f}"),
        ("sensitivity", f"{result['sensitivity']:.4f}"),
        ("specificity", f"{result['specificity']:.4f}"),
        ("AUC", f"{result['auc']:.4f}"),
        ("ECE", f"{result['ece']:.4f}"),
        ("threshold", f"{result['threshold']:.4f}"),
        ("confusion tn/fp/fn/tp", "/".join(str(result["confusion"][k]) for k in ("tn", "fp", "fn", "tp"))),
        ("gate rejected", f"{result['gate_rejected']}"),
        ("polarity rejected", f"{result['polarity_rejected']}"),
        ("occlusion_corners_dp05", f"{result['occlusion_corners_dp05']:.4f}"),
        ("occlusion_frame_dp05", f"{result['occlusion_frame_dp05']:.4f}"),
        (
            "occlusion_flips",
            f"{result['occlusion_flips']:.4f} ({result['occlusion_flips_count']}/{result['occlusions']})",
        ),
        ("cam_border_mass_median", f"{result['cam_border_mass_median']} (maps shown: {result['cam_maps_shown']})"),
        ("cam_border_mass_median_all", f"{result['cam_border_mass_median_all']}"),
        ("model", result["model_version"]),
        ("seconds", f"{result['seconds']}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
