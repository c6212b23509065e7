"""A set of images that are not chest radiographs, for measuring the gate.

Built only from what ships with installed packages (matplotlib's and scikit-learn's sample images,
including an MRI slice) plus generated images (noise, gradients, shapes, text, checkerboards),
each in colour and gray and under random crops.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Stretch any numeric 2-D array to 0-255."""
    v = values.astype(np.float32)
    span = float(v.max() - v.min()) or 1.0
    return ((v - v.min()) * (255.0 / span)).astype(np.uint8)


def _package_images() -> list[np.ndarray]:
    """RGB uint8 images that ship with matplotlib and scikit-learn."""
    import matplotlib
    import sklearn.datasets

    images: list[np.ndarray] = [np.asarray(img, dtype=np.uint8) for img in sklearn.datasets.load_sample_images().images]
    sample = Path(matplotlib.get_data_path()) / "sample_data"
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"):
        bgr = cv2.imread(str(sample / name), cv2.IMREAD_COLOR)
        if bgr is not None:
            images.append(np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8))
    with gzip.open(sample / "s1045.ima.gz") as fh:
        mri = np.frombuffer(fh.read(), np.uint16).reshape(256, 256)
    mri8 = _to_uint8(mri)
    images.append(cv2.cvtColor(mri8, cv2.COLOR_GRAY2RGB))
    with np.load(sample / "jacksboro_fault_dem.npz") as dem:
        terrain = _to_uint8(dem["elevation"])
    images.append(cv2.cvtColor(terrain, cv2.COLOR_GRAY2RGB))
    digits = sklearn.datasets.load_digits().images[:4]
    for d in digits:
        big = cv2.resize((d * 16).astype(np.uint8), (224, 224), interpolation=cv2.INTER_NEAREST)
        images.append(cv2.cvtColor(big, cv2.COLOR_GRAY2RGB))
    return images


def _generated(rng: np.random.Generator) -> list[np.ndarray]:
    """RGB uint8 synthetic images."""
    out = []
    for _ in range(4):
        out.append(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
        out.append(np.repeat(rng.integers(0, 256, (256, 256, 1), dtype=np.uint8), 3, axis=2))
    ramp = np.linspace(0, 255, 256, dtype=np.float32)
    out.append(np.stack([np.tile(ramp, (256, 1))] * 3, axis=-1).astype(np.uint8))
    out.append(
        np.stack([np.tile(ramp, (256, 1)).T, np.tile(ramp, (256, 1)), np.full((256, 256), 128.0)], -1).astype(np.uint8)
    )
    board = ((np.indices((256, 256)) // 32).sum(axis=0) % 2 * 255).astype(np.uint8)
    out.append(cv2.cvtColor(board, cv2.COLOR_GRAY2RGB))
    for value in (0, 128, 255):
        out.append(np.full((256, 256, 3), value, np.uint8))
    for _ in range(6):
        canvas = np.full((300, 300, 3), int(rng.integers(0, 256)), np.uint8)
        for _ in range(12):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            centre = tuple(int(c) for c in rng.integers(0, 300, 2))
            cv2.circle(canvas, centre, int(rng.integers(5, 80)), colour, -1)
        out.append(canvas)
    for _ in range(4):
        page = np.full((320, 240, 3), 255, np.uint8)
        for row in range(20, 320, 18):
            cv2.putText(page, "Lorem ipsum dolor sit amet", (8, row), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
        out.append(page)
    return out


def images(count: int = 300, seed: int = 0) -> Iterator[np.ndarray]:
    """`count` RGB uint8 non-radiographs: the base set, then random crops and gray versions of it."""
    rng = np.random.default_rng(seed)
    base = _package_images() + _generated(rng)
    for i in range(count):
        img = base[i % len(base)]
        if i >= len(base):
            h, w = img.shape[:2]
            ch, cw = int(h * rng.uniform(0.4, 1.0)), int(w * rng.uniform(0.4, 1.0))
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            img = img[y : y + ch, x : x + cw]
            if rng.random() < 0.5:
                img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        yield np.ascontiguousarray(img)
