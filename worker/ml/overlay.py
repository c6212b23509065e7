"""Turn a Grad-CAM map into a coloured heatmap and an overlay on the radiograph (OpenCV, no TensorFlow).

The colour scale is absolute: the map arrives in [0, 1] on the model card's fixed `cam_scale`, 0 is
black (inferno colour map) and fully transparent in the overlay, so where there is no evidence the
radiograph shows through untouched. `LEGEND` describes the scale for the page.

Formats (issue 12: encoding was as costly as the model itself): the heatmap is a lossless PNG, at most
HEATMAP_SIDE pixels long, since it carries a 14x14 map whose smooth upscaling the browser does as well
(the viewer stretches it over the radiograph, `object-fit: contain`; side by side at 448 pixels, a 64-pixel
map and a 256-pixel one look the same, and the small one encodes 5 times faster); the overlay is a JPEG at
the display size, a photograph-like image that JPEG encodes about 20 times faster than PNG, and 6 times smaller.
The colour map is one table lookup (cv2.applyColorMap rebuilds its table at every call).
"""

from __future__ import annotations

import cv2
import numpy as np

COLORMAP = cv2.COLORMAP_INFERNO
MAX_ALPHA = 0.6  # opacity of the strongest evidence in the overlay
HEATMAP_SIDE = 64  # the heatmap PNG's longest side at most: about 4 pixels a cell of the 14x14 map
JPEG_QUALITY = 90
LEGEND = {
    "colormap": "inferno",
    "low": "no evidence (transparent)",
    "high": "strongest evidence for pneumonia",
    "scale": "absolute: the same colour means the same evidence in every study",
    "normal_call": "no map: the model found no focal evidence for pneumonia",
}


_TABLE = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(1, 256), COLORMAP)  # (1, 256, 3) BGR


def colorize(cam: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """cam: (h, w) float in [0, 1]; size: (width, height). Returns ((H, W, 3) uint8 BGR, (H, W) float32 values)."""
    values = np.clip(cv2.resize(cam.astype(np.float32), size, interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    as_u8 = (values * 255.0).astype(np.uint8)
    return np.asarray(cv2.LUT(cv2.cvtColor(as_u8, cv2.COLOR_GRAY2BGR), _TABLE), dtype=np.uint8), values


def overlay(gray: np.ndarray, heatmap_bgr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """gray: (H, W) uint8; heatmap_bgr: (H, W, 3) uint8; values: (H, W) in [0, 1] -> blended (H, W, 3) uint8 BGR.

    Each pixel's opacity is MAX_ALPHA times its value: no evidence leaves the radiograph as it is.
    """
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if not values.any():
        return base
    alpha = np.ascontiguousarray(values * MAX_ALPHA, dtype=np.float32)
    return np.asarray(cv2.blendLinear(base, heatmap_bgr, 1.0 - alpha, alpha), dtype=np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """Lossless, no row filter: a smooth map compresses as well without one, and several times faster."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    return encode(".png", image, params)


def encode_jpeg(image: np.ndarray) -> bytes:
    return encode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])


def encode(ext: str, image: np.ndarray, params: list[int]) -> bytes:
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise RuntimeError(f"{ext} encoding failed")
    return bytes(buf.tobytes())


def heatmap_size(width: int, height: int) -> tuple[int, int]:
    """The heatmap's (width, height): the display's aspect ratio, its longest side at most HEATMAP_SIDE."""
    scale = min(1.0, HEATMAP_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def render(gray: np.ndarray, cam: np.ndarray) -> tuple[bytes, bytes]:
    """gray: (H, W) uint8; cam: (h, w) in [0, 1] on the absolute scale. Returns (heatmap PNG, overlay JPEG)."""
    h, w = gray.shape
    heat_small, _ = colorize(cam, heatmap_size(w, h))
    if not cam.any():  # a NORMAL call's map: the overlay is the radiograph itself
        return encode_png(heat_small), encode_jpeg(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    heat, values = colorize(cam, (w, h))
    return encode_png(heat_small), encode_jpeg(overlay(gray, heat, values))
