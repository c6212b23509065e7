"""Acquisition families and the honest validation split (pure Python and numpy: runs on the GPU trainer too).

The Kermany training images come in file-name families that behave like different acquisitions:
`IM-` and `NORMAL2-IM-` normals, and `personN_bacteria` / `personN_virus` pneumonias. A random patient split
leaves every family on both sides, which made v1's validation far easier than the held-back split
(AUC 0.9994 against 0.964). Here each of two folds holds out one whole family of normals plus a
patient-level share of the pneumonias:

    fold A: validation = every NORMAL2- normal + pneumonia patients in buckets [0, 15)
    fold B: validation = every IM- normal      + pneumonia patients in buckets [15, 30)

A patient's bucket is a stable hash of the patient id (0-99), so the split is the same on every machine.
Models trained on fold A's rest are scored on fold A's validation and vice versa ("cross-fitting"); the
shipped ensemble averages members of both folds, and its temperature and threshold are fitted on the
pooled out-of-fold predictions.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FAMILIES = ("IM", "NORMAL2", "bacteria", "virus")
FOLDS: dict[str, tuple[str, range]] = {
    "A": ("NORMAL2", range(0, 15)),
    "B": ("IM", range(15, 30)),
}
# v1's kind of validation, for comparison only: 15 % of patients of every family, normals included.
RANDOM_FOLD = ("R", range(30, 45))
_PATIENT = re.compile(r"(person\d+|(?:NORMAL2-)?IM-\d+)", re.IGNORECASE)


def patient_id(file_name: str) -> str:
    """'person1000_virus_1681.jpeg' -> 'PERSON1000'; 'IM-0115-0001.jpeg' -> 'IM-0115'."""
    match = _PATIENT.search(file_name)
    return match.group(1).upper() if match else file_name


def family(file_name: str) -> str:
    """The acquisition family of a training file name (one of FAMILIES)."""
    name = file_name.upper()
    if name.startswith("NORMAL2-"):
        return "NORMAL2"
    if name.startswith("IM-"):
        return "IM"
    if "_VIRUS" in name:
        return "virus"
    if "_BACTERIA" in name:
        return "bacteria"
    raise ValueError(f"{file_name!r} belongs to no known family {FAMILIES}")


def bucket(patient: str) -> int:
    """A stable 0-99 bucket for a patient id (crc32, identical on every machine and Python)."""
    return zlib.crc32(patient.encode()) % 100


@dataclass(frozen=True)
class Fold:
    name: str
    train: np.ndarray  # (n_train,) int indices into the item list
    validation: np.ndarray  # (n_val,) int indices


def fold(name: str, file_names: Sequence[str], labels: Sequence[int]) -> Fold:
    """Split items (file names with labels 0 NORMAL / 1 PNEUMONIA) into fold `name`'s train and validation.

    Fold "R" (RANDOM_FOLD) is a plain patient-level split, as v1's validation was."""
    if name == RANDOM_FOLD[0]:
        held = np.array([bucket(patient_id(f)) in RANDOM_FOLD[1] for f in file_names])
        return Fold(name, np.flatnonzero(~held), np.flatnonzero(held))
    held_family, held_buckets = FOLDS[name]
    held = np.array(
        [
            (family(f) == held_family) if y == 0 else (bucket(patient_id(f)) in held_buckets)
            for f, y in zip(file_names, labels, strict=True)
        ]
    )
    return Fold(name, np.flatnonzero(~held), np.flatnonzero(held))
