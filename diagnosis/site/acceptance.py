"""The acceptance set's labels: a request-wide reference_label, or a zip's labels.csv (file name, label).

Only a clinic admin may label studies: a labelled study measures the model at the site and never enters the
clinical worklist, so a mislabelled or misfiled one must be an admin's deliberate act.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections import Counter
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import IO

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from diagnosis.access import AnyUser, has_role
from diagnosis.models import Label, Role

LABELS_FILE = "labels.csv"
MAX_LABELS_BYTES = 4 * 1024 * 1024
ONLY_ADMINS = gettext_lazy("Only a clinic admin may submit reference labels (an acceptance set).")


class LabelsError(ValueError):
    """labels.csv cannot be read, or names a label that is not NORMAL or PNEUMONIA."""


def require_labeller(user: AnyUser) -> None:
    if not has_role(user, Role.ADMIN):
        raise PermissionDenied(ONLY_ADMINS)


def read_labels(archive: IO[bytes]) -> dict[str, str] | None:
    """The labels of a zip's labels.csv at its root: each archive entry it labels -> NORMAL or PNEUMONIA; None
    without one. A row names an entry by its path in the archive, or by its file name alone where no other entry
    has that name (two x/a.png and y/a.png are labelled by path only). A first row whose label column is not a
    label is taken as a header. Raises LabelsError for a bad file, a bad label or a name labelled twice apart."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError):
        archive.seek(0)
        return None  # not a zip: the archive check says so
    try:
        with zf:
            info = next((i for i in zf.infolist() if i.filename == LABELS_FILE), None)
            if info is None:
                return None
            if info.file_size > MAX_LABELS_BYTES:
                raise LabelsError(
                    _("%(file)s is over %(megabytes)s MB.")
                    % {"file": LABELS_FILE, "megabytes": MAX_LABELS_BYTES // (1024 * 1024)}
                )
            raw = _read(zf, info)
            names = [i.filename for i in zf.infolist() if not i.is_dir() and i.filename != LABELS_FILE]
    finally:
        archive.seek(0)
    return resolved(parse_labels(raw), names)


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """labels.csv's bytes; a corrupt entry is a refused labels.csv, never labelled studies stored as clinical."""
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, ValueError, zlib.error) as exc:
        raise LabelsError(
            _("%(file)s cannot be read from the archive (%(error)s).") % {"file": LABELS_FILE, "error": exc}
        ) from exc


def parse_labels(raw: bytes) -> dict[str, str]:
    """labels.csv's rows: name -> NORMAL or PNEUMONIA. Raises LabelsError for text that is not UTF-8 CSV, a row
    that is not 'name,label', a label that is neither, or a name given two different labels."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelsError(_("%(file)s is not UTF-8 text.") % {"file": LABELS_FILE}) from exc
    labels: dict[str, str] = {}
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            _add(labels, number, [c.strip() for c in row])
    except csv.Error as exc:  # a field over the csv module's limit, say
        raise LabelsError(
            _("%(file)s is not CSV text of 'file name,label' rows: %(error)s.") % {"file": LABELS_FILE, "error": exc}
        ) from exc
    return labels


def _add(labels: dict[str, str], number: int, cells: list[str]) -> None:
    if not any(cells):
        return
    if len(cells) < 2 or not cells[0]:
        raise LabelsError(_("%(file)s, row %(row)s: write 'file name,label'.") % {"file": LABELS_FILE, "row": number})
    label = cells[1].upper()
    if label not in Label.values:
        if number == 1:
            return  # a header
        raise LabelsError(
            _("%(file)s, row %(row)s: '%(label)s' is not NORMAL or PNEUMONIA.")
            % {"file": LABELS_FILE, "row": number, "label": cells[1]}
        )
    if labels.get(cells[0], label) != label:
        raise LabelsError(
            _("%(file)s, row %(row)s: '%(name)s' is labelled both NORMAL and PNEUMONIA.")
            % {"file": LABELS_FILE, "row": number, "name": cells[0]}
        )
    labels[cells[0]] = label


def resolved(labels: Mapping[str, str], names: list[str]) -> dict[str, str]:
    """Each of the archive's entry names labels.csv labels: by its path, else by its file name alone when that
    name is the entry's only (a file name shared by entries in different folders labels none of them)."""
    count = Counter(PurePosixPath(name).name for name in names)
    out = {}
    for name in names:
        base = PurePosixPath(name).name
        label = labels.get(name) or (labels.get(base, "") if count[base] == 1 else "")
        if label:
            out[name] = label
    return out


def label_of(name: str, labels: Mapping[str, str]) -> str:
    """A zip entry's label from read_labels ("" when labels.csv gives none)."""
    return labels.get(name, "")
