"""Image bytes for tests, generated in memory (no files from ../shared needed)."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chest_xray"
NO_DATA_REASON = (
    f"the Kermany training images are not at {SHARED_DATA} (they ship with CI's ../shared, not with the repo)"
)


def chest_like(width: int = 320, height: int = 256, seed: int = 0) -> np.ndarray:
    """A gray (height, width) uint8 image with two dark 'lungs' in a brighter body, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    body = 170 - 60 * (((xx - width / 2) / (width / 2)) ** 2)
    for cx in (0.3, 0.7):
        lung = ((xx - cx * width) / (0.16 * width)) ** 2 + ((yy - 0.5 * height) / (0.3 * height)) ** 2 < 1
        body = np.where(lung, 60, body)
    return np.clip(body + rng.normal(0, 8, body.shape), 0, 255).astype(np.uint8)


def colour_noise(size: int = 256, seed: int = 0) -> np.ndarray:
    """A (size, size, 3) uint8 colour image of noise: not a radiograph, the gate must reject it."""
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def encode(array: np.ndarray, fmt: str = "PNG", mode: str | None = None, **save: object) -> bytes:
    img = Image.fromarray(array, mode=mode) if mode else Image.fromarray(array)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


# The same bytes for the same size, encoded once per process: a factory made study stores one (the page walks'
# seed makes 62 studies), and PNG's compression of the noise took about 8 s of CPU per run of the suite.
@cache
def png(width: int = 320, height: int = 256) -> bytes:
    return encode(chest_like(width, height))


@cache
def jpeg(width: int = 320, height: int = 256) -> bytes:
    return encode(chest_like(width, height), "JPEG", quality=90)


def real_radiograph(label: str = "PNEUMONIA", index: int = 0) -> bytes:
    files = sorted((SHARED_DATA / "val" / label).glob("*.jpeg"))
    return files[index].read_bytes()
