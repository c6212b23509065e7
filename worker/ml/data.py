"""Labelled folders and the acquisition-shift suite of the honest validation (numpy/OpenCV only)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from worker.ml.preprocessing import decode, model_input, resized
from worker.ml.spec import LABELS
from worker.ml.splits import patient_id

IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png"})


@dataclass(frozen=True)
class Item:
    path: Path
    label: int  # 0 NORMAL, 1 PNEUMONIA
    patient: str


def list_folder(root: Path) -> list[Item]:
    """root/NORMAL/* and root/PNEUMONIA/* -> items sorted by path (deterministic)."""
    items: list[Item] = []
    for label, name in enumerate(LABELS):
        folder = root / name
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is missing; expected {root}/NORMAL and {root}/PNEUMONIA")
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                items.append(Item(path, label, patient_id(path.name)))
    return items


def load_inputs(items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs through the serving path, (n, S, S) uint8, and their (n,) decode chroma."""
    decoded = [decode(i.path.read_bytes()) for i in items]
    return np.stack([model_input(d.gray) for d in decoded]), np.array([d.chroma for d in decoded])


def load_raw(items: list[Item]) -> np.ndarray:
    """Decoded grey levels at the model's size, before the corner mask: (n, S, S) uint8, for the shift suite."""
    return np.stack([resized(decode(i.path.read_bytes()).gray) for i in items])


def to_inputs(grays: np.ndarray) -> np.ndarray:
    """(n, H, W) uint8 -> (n, S, S) uint8 model inputs (the serving preprocessing)."""
    return np.stack([model_input(g) for g in grays])


def _gamma(g: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: x**g


def _contrast(x: np.ndarray) -> np.ndarray:
    return 0.5 + (x - 0.5) * 0.5


def _crop(x: np.ndarray) -> np.ndarray:
    h, w = x.shape
    dy, dx = int(h * 0.1), int(w * 0.1)
    return np.asarray(cv2.resize(x[dy : h - dy, dx : w - dx], (w, h), interpolation=cv2.INTER_LINEAR))


def _border(x: np.ndarray) -> np.ndarray:
    h, w = x.shape
    pad = int(h * 0.12)
    return np.asarray(cv2.resize(cv2.copyMakeBorder(x, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0), (w, h)))


def _blur_noise(x: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.GaussianBlur(x, (0, 0), 1.5) + np.random.default_rng(5).normal(0, 0.03, x.shape))


def _rotate(x: np.ndarray) -> np.ndarray:
    h, w = x.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 8.0, 1.0)
    return np.asarray(cv2.warpAffine(x, m, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=0.0))


def _low_resolution(x: np.ndarray) -> np.ndarray:
    h, w = x.shape
    small = cv2.resize(x, (w * 2 // 5, h * 2 // 5), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))


def _jpeg(x: np.ndarray) -> np.ndarray:
    _, buf = cv2.imencode(".jpg", (x * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 15])
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE), dtype=np.float32) / 255.0


def _markers(x: np.ndarray) -> np.ndarray:
    """A bright side marker and a line of text, as a different hospital would burn them in."""
    h, w = x.shape
    out = np.ascontiguousarray((x * 255).astype(np.uint8))  # OpenCV draws text on 8-bit images only
    cv2.putText(out, "L", (int(w * 0.82), int(h * 0.14)), cv2.FONT_HERSHEY_SIMPLEX, h / 220, 255, max(1, h // 110))
    cv2.putText(out, "AP SUPINE", (int(w * 0.04), int(h * 0.95)), cv2.FONT_HERSHEY_SIMPLEX, h / 500, 255, 1)
    return out.astype(np.float32) / 255.0


# The honest validation scores every validation image under each of these, applied to the decoded grey levels
# before the serving preprocessing. Everything that counts shift kinds reads len(SHIFTS).
SHIFTS: tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...] = (
    ("dark gamma", _gamma(1.8)),
    ("bright gamma", _gamma(0.55)),
    ("low contrast", _contrast),
    ("tight crop", _crop),
    ("wide border", _border),
    ("blur and noise", _blur_noise),
    ("rotation 8 degrees", _rotate),
    ("low resolution", _low_resolution),
    ("JPEG quality 15", _jpeg),
    ("burned-in markers", _markers),
)


def shifted(gray: np.ndarray, kind: int) -> np.ndarray:
    """A deterministic acquisition shift (SHIFTS[kind]) of a raw (H, W) uint8 radiograph."""
    x = gray.astype(np.float32) / 255.0
    return np.clip(SHIFTS[kind][1](x) * 255.0, 0, 255).astype(np.uint8)


def shifted_set(grays: np.ndarray) -> np.ndarray:
    """(n, H, W) uint8 -> (len(SHIFTS) * n, H, W): every image under each shift kind, kind by kind."""
    return np.stack([shifted(g, kind) for kind in range(len(SHIFTS)) for g in grays])
