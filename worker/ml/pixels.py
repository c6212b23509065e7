"""The primitives every decoder shares (JPEG/PNG in worker.ml.preprocessing, DICOM in worker.ml.dicom): the
refusal, the decoded image, the size and blankness checks, the percentile window and the colour measure."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from worker.ml.limits import MAX_ASPECT, MIN_CONTRAST, MIN_SIDE


class ImageRejected(ValueError):
    """The bytes are not a usable image; the message is shown to the user as is."""


@dataclass(frozen=True)
class DecodedImage:
    """gray: (H, W) uint8 in [0, 255]; chroma: mean HSV saturation in [0, 1] (0 for gray input)."""

    gray: np.ndarray
    chroma: float
    width: int
    height: int
    format: str


def check_size(width: int, height: int, max_pixels: int) -> None:
    """Raises ImageRejected for an image too small, too large, or too long for its width to be a chest radiograph."""
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageRejected(
            f"The image is too small ({width}x{height}); at least {MIN_SIDE}x{MIN_SIDE} pixels are needed."
        )
    if width * height > max_pixels:
        raise ImageRejected(
            f"The image is too large ({width}x{height} pixels); the limit is {max_pixels // 1_000_000} megapixels."
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageRejected(
            f"The image is {width}x{height} pixels, more than {MAX_ASPECT:.0f} times longer than it is wide: a strip "
            "or a crop, not a whole chest radiograph, and it cannot be judged."
        )


def check_not_blank(gray: np.ndarray) -> np.ndarray:
    """gray, or ImageRejected when it is all (nearly) one grey level: there is nothing to judge."""
    low, high, _, _ = cv2.minMaxLoc(gray)
    if high - low < MIN_CONTRAST:
        raise ImageRejected(f"The image is blank (every pixel is within {high - low:.0f} grey levels of the others).")
    return gray


def window_to_uint8(arr: np.ndarray) -> np.ndarray:
    """(H, W) float of any range -> uint8, stretching the 0.5-99.5 percentile window to 0-255."""
    low, high = np.percentile(arr, [0.5, 99.5])
    if high <= low:
        return np.zeros(arr.shape, dtype=np.uint8)
    scaled = (arr - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def chroma_of(rgb: np.ndarray) -> float:
    """rgb: (H, W, 3) uint8 -> mean HSV saturation in [0, 1]; 0 for a gray image."""
    h, w = rgb.shape[:2]
    return float(cv2.sumElems(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV))[1] / (h * w) / 255.0)  # numpy's mean, exactly
