"""The acceptance set's labels: a request-wide reference_label, or a zip's labels.csv (file name, label).

Only a clinic admin may label studies: a labelled study measures the model at the site and never enters the
clinical worklist, so a mislabelled or misfiled one must be an admin's deliberate act.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import IO

from django.core.exceptions import PermissionDenied

from diagnosis.access import AnyUser, has_role
from diagnosis.models import Label, Role

LABELS_FILE = "labels.csv"
MAX_LABELS_BYTES = 4 * 1024 * 1024
ONLY_ADMINS = "Only a clinic admin may submit reference labels (an acceptance set)."


class LabelsError(ValueError):
    """labels.csv cannot be read, or names a label that is not NORMAL or PNEUMONIA."""


def require_labeller(user: AnyUser) -> None:
    if not has_role(user, Role.ADMIN):
        raise PermissionDenied(ONLY_ADMINS)


def read_labels(archive: IO[bytes]) -> dict[str, str] | None:
    """The labels of a zip's labels.csv at its root: file name -> NORMAL or PNEUMONIA; None without one. A first
    row whose label column is not a label is taken as a header. Raises LabelsError for a bad file or label."""
    try:
        with zipfile.ZipFile(archive) as zf:
            info = next((i for i in zf.infolist() if i.filename == LABELS_FILE), None)
            if info is None:
                return None
            if info.file_size > MAX_LABELS_BYTES:
                raise LabelsError(f"{LABELS_FILE} is over {MAX_LABELS_BYTES // (1024 * 1024)} MB.")
            raw = zf.read(info)
    except (zipfile.BadZipFile, OSError):
        return None  # not a zip: the archive check says so
    finally:
        archive.seek(0)
    return parse_labels(raw)


def parse_labels(raw: bytes) -> dict[str, str]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelsError(f"{LABELS_FILE} is not UTF-8 text.") from exc
    labels: dict[str, str] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if len(cells) < 2 or not cells[0]:
            raise LabelsError(f"{LABELS_FILE}, row {number}: write 'file name,label'.")
        label = cells[1].upper()
        if label not in Label.values:
            if number == 1:
                continue  # a header
            raise LabelsError(f"{LABELS_FILE}, row {number}: '{cells[1]}' is not NORMAL or PNEUMONIA.")
        labels[cells[0]] = label
    return labels


def label_of(name: str, labels: Mapping[str, str]) -> str:
    """A zip entry's label: by its path in the archive, else by its file name alone ("" when neither is listed)."""
    return labels.get(name) or labels.get(PurePosixPath(name).name, "")
