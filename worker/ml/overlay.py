"""Turn a Grad-CAM map into a coloured heatmap and an overlay on the radiograph (OpenCV, no TensorFlow).

The colour scale is absolute: the map arrives in [0, 1] on the model card's fixed `cam_scale`, 0 is
black (inferno colour map) and fully transparent in the overlay, so where there is no evidence the
radiograph shows through untouched. `LEGEND` describes the scale for the page.
"""

from __future__ import annotations

import cv2
import numpy as np

COLORMAP = cv2.COLORMAP_INFERNO
MAX_ALPHA = 0.6  # opacity of the strongest evidence in the overlay
LEGEND = {
    "colormap": "inferno",
    "low": "no evidence (transparent)",
    "high": "strongest evidence for pneumonia",
    "scale": "absolute: the same colour means the same evidence in every study",
    "normal_call": "no map: the model found no focal evidence for pneumonia",
}


def colorize(cam: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """cam: (h, w) float in [0, 1]; size: (width, height). Returns ((H, W, 3) uint8 BGR, (H, W) float32 values)."""
    values = np.clip(cv2.resize(cam.astype(np.float32), size, interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    as_u8 = (values * 255.0).astype(np.uint8)
    return np.asarray(cv2.applyColorMap(as_u8, COLORMAP), dtype=np.uint8), values


def overlay(gray: np.ndarray, heatmap_bgr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """gray: (H, W) uint8; heatmap_bgr: (H, W, 3) uint8; values: (H, W) in [0, 1] -> blended (H, W, 3) uint8 BGR.

    Each pixel's opacity is MAX_ALPHA times its value: no evidence leaves the radiograph as it is.
    """
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR).astype(np.float32)
    alpha = (values * MAX_ALPHA)[..., None]
    return np.asarray(np.clip(base * (1 - alpha) + heatmap_bgr.astype(np.float32) * alpha, 0, 255), dtype=np.uint8)


PNG_COMPRESSION = 1  # zlib level: several times faster than the default 3, files about 10 % larger


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return bytes(buf.tobytes())


def render(gray: np.ndarray, cam: np.ndarray) -> tuple[bytes, bytes]:
    """gray: (H, W) uint8; cam: (h, w) in [0, 1] on the absolute scale. Returns (heatmap PNG, overlay PNG)."""
    h, w = gray.shape
    heat, values = colorize(cam, (w, h))
    return encode_png(heat), encode_png(overlay(gray, heat, values))
