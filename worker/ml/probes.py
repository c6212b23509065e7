"""Shortcut probes: does the call move when only the image's corners or frame change, and where is the map?

The two occlusions replace part of the *model input* with the image's median grey:
- corners: the four corner squares of masks.CORNER_SHARE of the side (side markers and text live there);
- frame: the outer band of masks.FRAME_SHARE of the side.
Since v2 the serving preprocessing itself masks the corners the same way (the model never sees them), so
the corner probe measures 0 by construction and the frame probe is the informative one.
A model that reads the lungs barely moves under either. `cam_border_mass` is the share of the Grad-CAM
mass that falls in that outer frame (the frame is 42 % of the pixels, so a uniform map gives 0.42);
`cam_border_mass_median` is its median over the maps a clinician is shown (PNEUMONIA calls), and
`cam_border_mass_median_all` over every image's raw map, shown or not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from worker.ml.masks import FRAME_SHARE, corners_mask, frame_mask

MOVE = 0.05  # a probability change larger than this counts as "moved"


def _median(x: np.ndarray) -> np.ndarray:
    return np.median(x.reshape(len(x), -1), axis=1).astype(x.dtype)[:, None, None]


def occlude(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """x: (n, S, S) uint8 -> a copy with the mask's pixels set to each image's median grey."""
    return np.where(mask[None], _median(x), x)


def border_mass(cams: np.ndarray, size: int, share: float = FRAME_SHARE) -> np.ndarray:
    """cams: (n, h, w) >= 0 -> (n,) share of each map's mass (upsampled to size x size) in the outer frame.

    NaN for an all-zero map (it puts no mass anywhere)."""
    import cv2

    mask = frame_mask(size, share)
    out = np.full(len(cams), np.nan)
    for i, cam in enumerate(cams):
        up = np.maximum(cv2.resize(cam.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR), 0)
        total = float(up.sum())
        if total > 0:
            out[i] = float(up[mask].sum()) / total
    return out


def occluded_logits(logits: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """logits: (n, S, S) uint8 -> (n,) raw logits. Returns the logits of x as it is and under each occlusion."""
    size = x.shape[1]
    return {
        "none": logits(x),
        "corners": logits(occlude(x, corners_mask(size))),
        "frame": logits(occlude(x, frame_mask(size))),
    }


def occlusion_report(
    logits: dict[str, np.ndarray], temperature: float, threshold: float, cams: np.ndarray | None, size: int
) -> dict[str, Any]:
    """logits: from occluded_logits; cams: (n, h, w) raw Grad-CAM of the unoccluded images, or None.

    The evaluate_model keys of the shortcut probe, at the model's calibration and threshold."""
    from worker.ml.calibration import probabilities

    base = probabilities(logits["none"], temperature)
    report: dict[str, Any] = {}
    flips = 0
    for name in ("corners", "frame"):
        p = probabilities(logits[name], temperature)
        report[f"occlusion_{name}_dp05"] = float(np.mean(np.abs(p - base) > MOVE))
        flips += int(np.sum((p >= threshold) != (base >= threshold)))
    report["occlusion_flips"] = flips / (2 * len(base))
    report["occlusion_flips_count"] = flips
    report["occlusions"] = 2 * len(base)
    if cams is not None:
        mass = border_mass(cams, size)
        shown = base >= threshold  # the heatmap rule draws a map for PNEUMONIA calls only
        report["cam_border_mass_median"] = _nanmedian(mass[shown])
        report["cam_border_mass_median_all"] = _nanmedian(mass)
        report["cam_maps_shown"] = int(shown.sum())
    return report


def _nanmedian(values: np.ndarray) -> float | None:
    return float(np.nanmedian(values)) if np.isfinite(values).any() else None
