"""Turn a Grad-CAM map into a coloured heatmap and an overlay on the radiograph (OpenCV, no TensorFlow).

The colour scale is absolute: the map arrives in [0, 1] on the model card's fixed `cam_scale`, 0 is
black (inferno colour map) and fully transparent in the overlay, so where there is no evidence the
radiograph shows through untouched. `LEGEND` describes the scale for the page.

Formats, chosen for speed (encoding can cost as much as the model itself): the heatmap is a lossless PNG, at most
HEATMAP_SIDE pixels long, since it carries a 14x14 map whose smooth upscaling the browser does as well
(the viewer stretches it over the radiograph, `object-fit: contain`; side by side at 448 pixels, a 64-pixel
map and a 256-pixel one look the same, and the small one encodes 5 times faster); the overlay is a JPEG at
the display size, a photograph-like image that JPEG encodes about 20 times faster than PNG, and 6 times smaller.
The colour map is one table lookup (cv2.applyColorMap rebuilds its table at every call). The overlay's
weights are worked out on a grid at most BLEND_SIDE pixels long and stretched to the display size: for a
clinic's radiograph (a 1024-pixel display) that halves the drawing, which was most of the work left outside
the model, and the eye cannot tell it from a blend worked out at every pixel (tests/worker/ml/test_overlay.py
bounds the difference).
"""

from __future__ import annotations

import cv2
import numpy as np

COLORMAP = cv2.COLORMAP_INFERNO
MAX_ALPHA = 0.6  # opacity of the strongest evidence in the overlay
HEATMAP_SIDE = 64  # the heatmap PNG's longest side at most: about 4 pixels a cell of the 14x14 map
BLEND_SIDE = 256  # the overlay's weights are worked out on a grid this many pixels a side at most: 18 a cell
JPEG_QUALITY = 90
LEGEND = {
    "colormap": "inferno",
    "low": "no evidence (transparent)",
    "high": "strongest evidence for pneumonia",
    "scale": "absolute: the same colour means the same evidence in every study",
    "normal_call": "no map: the model found no focal evidence for pneumonia",
}


_TABLE = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(1, 256), COLORMAP)  # (1, 256, 3) BGR
_OPACITY = np.arange(256) / 255.0 * MAX_ALPHA  # each level's opacity in the overlay
_KEEP = np.rint((1.0 - _OPACITY) * 255.0).astype(np.uint8)  # how much of the radiograph shows, out of 255
_TINT = np.rint(_TABLE * _OPACITY[None, :, None]).astype(np.uint8)  # the level's colour times its opacity


def levels(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """cam: (h, w) float in [0, 1]; size: (width, height) -> (H, W) uint8, the map stretched and quantised."""
    values = np.clip(cv2.resize(cam.astype(np.float32), size, interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    return np.asarray((values * 255.0).astype(np.uint8))


def colorize(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """cam: (h, w) float in [0, 1]; size: (width, height) -> (H, W, 3) uint8 BGR on the colour map."""
    return _lut3(levels(cam, size), _TABLE)


def overlay(gray: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """gray: (H, W) uint8; cam: (h, w) in [0, 1] -> the radiograph with the evidence blended in, (H, W, 3) uint8 BGR.

    Each pixel's opacity is MAX_ALPHA times its value: a map with no evidence leaves the radiograph as it is, to the
    bit. The opacity and the premultiplied colour are looked up on a grid of at most BLEND_SIDE a side, each side
    on its own (so that a very narrow image keeps all the map's cells across it), then stretched.
    """
    h, w = gray.shape
    grid = levels(cam, (min(w, BLEND_SIDE), min(h, BLEND_SIDE)))
    keep, tint = cv2.LUT(grid, _KEEP), _lut3(grid, _TINT)
    if grid.shape != gray.shape:
        keep = cv2.resize(keep, (w, h), interpolation=cv2.INTER_LINEAR)
        tint = cv2.resize(tint, (w, h), interpolation=cv2.INTER_LINEAR)
    shown = cv2.multiply(gray, keep, scale=1.0 / 255.0)
    return np.asarray(cv2.add(cv2.cvtColor(shown, cv2.COLOR_GRAY2BGR), tint), dtype=np.uint8)


def _lut3(grid: np.ndarray, table: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.LUT(cv2.cvtColor(grid, cv2.COLOR_GRAY2BGR), table), dtype=np.uint8)


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
    return fitted_size(width, height, HEATMAP_SIDE)


def fitted_size(width: int, height: int, side: int) -> tuple[int, int]:
    """(width, height) scaled down to keep the aspect ratio with the longest side at most side."""
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def render(gray: np.ndarray, cam: np.ndarray) -> tuple[bytes, bytes]:
    """gray: (H, W) uint8; cam: (h, w) in [0, 1] on the absolute scale. Returns (heatmap PNG, overlay JPEG)."""
    h, w = gray.shape
    heat = heatmap_png(cam, w, h)
    if not cam.any():  # a NORMAL call's map: the overlay is the radiograph itself
        return heat, encode_jpeg(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    return heat, encode_jpeg(overlay(gray, cam))


def heatmap_png(cam: np.ndarray, width: int, height: int) -> bytes:
    """The heatmap of a radiograph of width x height: at most HEATMAP_SIDE long, a lossless PNG."""
    return encode_png(colorize(cam, heatmap_size(width, height)))
