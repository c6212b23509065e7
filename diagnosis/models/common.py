"""What every model module shares: the limits of free text and references, and where a study's files go."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext

# Limits of the optional study details and of notes, read by the model fields, the upload form and the API.
PATIENT_REF_MAX_LENGTH = 64
NOTE_MAX_LENGTH = 2000
MAX_AGE_YEARS = 130


# The files a study stores, by field: the upload and what intake derives from it (on Study), and what the worker
# draws (on Result). Intake, the worker and the orphan-file sweep all go by these lists.
STUDY_FILE_FIELDS = ("image", "preview", "thumbnail", "model_copy")
RESULT_FILE_FIELDS = ("heatmap", "overlay")


def printable(value: str) -> None:
    """A validator of free text (notes, references): no control characters but line breaks and tabs, and no
    format characters (Unicode's Cf: U+202E turns text around, U+200B is invisible, so NORTH\u200b-P1 looked like
    NORTH-P1 and was another patient for priors). The text is shown on pages, exported to CSV and sent to a PACS
    in a structured report."""
    bad = sorted({f"U+{ord(c):04X}" for c in value if unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\r\t"})
    if bad:
        raise ValidationError(
            gettext("Remove the control characters (%(characters)s).") % {"characters": ", ".join(bad)}
        )


def _study_path(folder: str, instance: models.Model, filename: str) -> str:
    """A study's files go to <folder>/<first two hex digits of its id>/<its id>-<filename>: 256 folders in all,
    made once, not a folder a study, which doubled the inodes a study takes (each costs the file system as much as
    a file) and runs into per-folder limits on subfolders (ext3: 32,000). Names stored before keep working: each
    row holds its own."""
    study_id = str(getattr(instance, "study_id", None) or instance.pk)
    return f"{folder}/{study_id[:2]}/{study_id}-{filename}"


def original_path(instance: models.Model, filename: str) -> str:
    return _study_path("studies", instance, filename)


def derived_path(instance: models.Model, filename: str) -> str:
    return _study_path("derived", instance, filename)
