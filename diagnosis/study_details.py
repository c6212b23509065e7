"""The optional, pseudonymous details given with an upload (and, for a clinic admin's acceptance set, the true
label), and how a DICOM header fills those left empty."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from diagnosis.models import MAX_AGE_YEARS, PATIENT_REF_MAX_LENGTH, Sex
from worker.ml.dicom import DicomHeader


@dataclass(frozen=True)
class StudyDetails:
    """Optional, pseudonymous details given with an upload."""

    patient_ref: str = ""
    age_years: int | None = None
    sex: str = ""
    projection: str = ""
    clinical_note: str = ""
    reference_label: str = ""  # a clinic admin's acceptance study: its true label (diagnosis.site.acceptance)


NO_DETAILS = StudyDetails()
DETAIL_FIELDS = tuple(f.name for f in fields(StudyDetails))


def details_from(cleaned: Mapping[str, Any]) -> StudyDetails:
    """StudyDetails from a validated form or serializer (text stripped of surrounding blanks)."""
    return StudyDetails(
        patient_ref=cleaned["patient_ref"].strip(),
        age_years=cleaned["age_years"],
        sex=cleaned["sex"],
        projection=cleaned["projection"],
        clinical_note=cleaned["clinical_note"].strip(),
        reference_label=cleaned.get("reference_label") or "",
    )


class HasDetails(Protocol):
    """A study, or the details an upload gives one (read only)."""

    @property
    def patient_ref(self) -> str: ...
    @property
    def age_years(self) -> int | None: ...
    @property
    def sex(self) -> str: ...
    @property
    def projection(self) -> str: ...
    @property
    def clinical_note(self) -> str: ...


NOTE_SHOWN = 60  # characters of the note a one-line description shows


def describe(details: HasDetails) -> str:
    """The details in one line, as the upload page confirms them ("Patient P-7 · 4 years · Female · AP · Note: …")."""
    age = details.age_years
    note = details.clinical_note
    shown = note if len(note) <= NOTE_SHOWN else note[: NOTE_SHOWN - 1] + "…"
    parts = [
        _("Patient %(ref)s") % {"ref": details.patient_ref} if details.patient_ref else "",
        "" if age is None else ngettext("%(age)d year", "%(age)d years", age) % {"age": age},
        str(Sex(details.sex).label) if details.sex else "",
        details.projection,
        _("Note: %(note)s") % {"note": shown} if note else "",
    ]
    return " · ".join(p for p in parts if p) or _("No study details")


def with_header(details: StudyDetails, header: DicomHeader | None) -> StudyDetails:
    """The form's details, each one left empty filled from the DICOM header (PatientID, age, sex, view)."""
    if header is None:
        return details
    return replace(
        details,
        patient_ref=details.patient_ref or _without_controls(header.patient_id)[:PATIENT_REF_MAX_LENGTH],
        age_years=details.age_years if details.age_years is not None else _age(header.age_years),
        sex=details.sex or header.sex,
        projection=details.projection or header.view_position,
    )


def _without_controls(text: str) -> str:
    """A header's text without control characters (models.printable refuses them where a person types)."""
    return "".join(c for c in text if unicodedata.category(c) != "Cc").strip()


def _age(years: int | None) -> int | None:
    return years if years is not None and 0 <= years <= MAX_AGE_YEARS else None
