"""Labelled folders, patient-level splits and shifted copies for a harder validation (numpy/OpenCV only)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from worker.ml.preprocessing import decode, model_input
from worker.ml.spec import LABELS

IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png"})
_PATIENT = re.compile(r"(person\d+|(?:NORMAL2-)?IM-\d+)", re.IGNORECASE)


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


def patient_id(file_name: str) -> str:
    """'person1000_virus_1681.jpeg' -> 'person1000'; 'IM-0115-0001.jpeg' -> 'IM-0115'."""
    match = _PATIENT.search(file_name)
    return match.group(1).upper() if match else file_name


def patient_split(items: list[Item], val_fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Stratified split with no patient on both sides."""
    folds = max(2, round(1 / val_fraction))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    labels = np.array([i.label for i in items])
    groups = np.array([i.patient for i in items])
    train_idx, val_idx = next(splitter.split(np.zeros(len(items)), labels, groups))
    return [items[i] for i in train_idx], [items[i] for i in val_idx]


def load_gray(items: list[Item]) -> np.ndarray:
    """Decoded grayscale images at the model's input size, before CLAHE: (n, 224, 224) uint8."""
    return np.stack([cv2.resize(_raw(i.path), (224, 224), interpolation=cv2.INTER_AREA) for i in items])


def _raw(path: Path) -> np.ndarray:
    return decode(path.read_bytes()).gray


def to_model_inputs(grays: np.ndarray) -> np.ndarray:
    """(n, H, W) uint8 -> (n, 224, 224) uint8 through the serving preprocessing."""
    return np.stack([model_input(g) for g in grays])


def shifted(gray: np.ndarray, kind: int) -> np.ndarray:
    """A deterministic acquisition shift of a raw (H, W) uint8 radiograph, applied before preprocessing.

    kinds: 0 dark gamma, 1 bright gamma, 2 low contrast, 3 tight crop, 4 wide border, 5 blur + noise.
    """
    x: np.ndarray = gray.astype(np.float32) / 255.0
    h, w = gray.shape
    if kind == 0:
        x = x**1.8
    elif kind == 1:
        x = x**0.55
    elif kind == 2:
        x = 0.5 + (x - 0.5) * 0.5
    elif kind == 3:
        dy, dx = int(h * 0.1), int(w * 0.1)
        x = cv2.resize(x[dy : h - dy, dx : w - dx], (w, h), interpolation=cv2.INTER_LINEAR)
    elif kind == 4:
        pad = int(h * 0.12)
        x = cv2.resize(cv2.copyMakeBorder(x, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0), (w, h))
    else:
        x = cv2.GaussianBlur(x, (0, 0), 1.5) + np.random.default_rng(kind).normal(0, 0.03, x.shape)
    return np.clip(x * 255.0, 0, 255).astype(np.uint8)


def shifted_set(grays: np.ndarray) -> Iterator[np.ndarray]:
    """Every raw validation image under each shift kind, in turn."""
    for kind in range(6):
        for g in grays:
            yield shifted(g, kind)
