"""The DICOM documents sent back to a PACS, built from rows already read (no queries here, no sending): the model's
Comprehensive SR (label, calibrated probability, threshold, model version), the Secondary Capture of the overlay
with a burned-in legend, and a reviewer's verified SR. All go in the original study (its Study Instance UID and
patient module) in one new results series, built with highdicom.

The SRs' text items are in the active language (diagnosis.pacs builds them in the clinic's); their coded concepts
stay coded, in English meanings. The capture's burned-in legend stays English: OpenCV's Hershey fonts draw ASCII
only, so Vietnamese letters would come out as question marks."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import cv2
import highdicom as hd
import numpy as np
from django.utils.translation import gettext, gettext_noop
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ComprehensiveSRStorage

from diagnosis.numbers import percent
from diagnosis.site.wording import NOT_VALIDATED, VALIDATED_SHORT
from worker.ml import overlay
from worker.ml.dicom import ACCESSION_MAX, SEXES

if TYPE_CHECKING:
    from diagnosis.models import DicomInstance, Result, ResultSend, ReviewSend, Study

MANUFACTURER = "Chest X-ray pneumonia service"
SERIES_NUMBER = 9901
DECISION_SUPPORT = gettext_noop("AI decision support - not a diagnosis; a clinician reads the image")
SCT_PNEUMONIA = hd.sr.CodedConcept("233604007", "SCT", "Pneumonia")
SCT_NORMAL = hd.sr.CodedConcept("17621005", "SCT", "Normal")
PROBABILITY = hd.sr.CodedConcept("PNEUMONIA-P", "99XRAYAI", "Calibrated probability of pneumonia")
THRESHOLD = hd.sr.CodedConcept("PNEUMONIA-T", "99XRAYAI", "Decision threshold")
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
# The overlay's longest side in the Secondary Capture, as the worker draws it (a NORMAL call's overlay is the
# study's 1024-pixel preview as it is): the PACS stores the capture uncompressed.
CAPTURE_SIDE = 768
SENDABLE_DATE = re.compile(r"\d{8}")
UTF8 = "ISO_IR 192"  # what we send is UTF-8: a reviewer's note or name in any script arrives as written


def reference_dataset(study: Study) -> Dataset:
    """The original study's patient and study modules, from what was kept (de-identified fields stay empty)."""
    dicom: DicomInstance = study.dicom
    ds = Dataset()
    ds.PatientName = dicom.patient_name
    ds.PatientID = study.patient_ref
    ds.PatientBirthDate = dicom.birth_date if SENDABLE_DATE.fullmatch(dicom.birth_date) else ""
    ds.PatientSex = study.sex if study.sex in SEXES else ""  # a value kept before headers were checked: left out
    ds.StudyInstanceUID = dicom.study_uid
    ds.SeriesInstanceUID = dicom.series_uid
    ds.SOPInstanceUID = dicom.sop_uid
    ds.SOPClassUID = dicom.sop_class_uid
    ds.AccessionNumber = dicom.accession if len(dicom.accession) <= ACCESSION_MAX else ""
    ds.StudyID = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.Modality = "DX"
    return ds


def structured_report(row: ResultSend) -> Dataset:
    study, result = row.study, row.study.result
    finding = SCT_PNEUMONIA if result.label == "PNEUMONIA" else SCT_NORMAL
    items: list[hd.sr.ContentItem] = [
        hd.sr.CodeContentItem(codes.DCM.Finding, finding, relationship_type="CONTAINS"),
        hd.sr.NumContentItem(PROBABILITY, round(result.probability, 4), NO_UNITS, relationship_type="CONTAINS"),
        hd.sr.NumContentItem(THRESHOLD, round(result.threshold, 4), NO_UNITS, relationship_type="CONTAINS"),
        hd.sr.TextContentItem(codes.DCM.AlgorithmName, MANUFACTURER, relationship_type="CONTAINS"),
        hd.sr.TextContentItem(codes.DCM.AlgorithmVersion, result.model_version, relationship_type="CONTAINS"),
        hd.sr.TextContentItem(codes.DCM.Comment, gettext(DECISION_SUPPORT), relationship_type="CONTAINS"),
        hd.sr.TextContentItem(codes.DCM.Comment, _operating_point(result), relationship_type="CONTAINS"),
    ]
    return _report(study, items, row.series_uid, row.sr_uid, 1)


def _operating_point(result: Result) -> str:
    """Whether the threshold and probability were validated at this site (by id alone: this module runs no
    query)."""
    return gettext(VALIDATED_SHORT if result.operating_point_id is not None else NOT_VALIDATED)


def _report(
    study: Study, items: list[hd.sr.ContentItem], series_uid: str, sop_uid: str, number: int, **more: Any
) -> Dataset:
    """A complete Comprehensive SR of these findings in the original study, in the results' series."""
    root = hd.sr.ContainerContentItem(codes.DCM.Findings)
    root.ContentSequence = hd.sr.ContentSequence(items)
    return hd.sr.ComprehensiveSR(
        evidence=[reference_dataset(study)],
        content=root,
        series_instance_uid=series_uid,
        series_number=SERIES_NUMBER,
        sop_instance_uid=sop_uid,
        instance_number=number,
        manufacturer=MANUFACTURER,
        is_complete=True,
        specific_character_set=UTF8,
        **more,
    )


def reviewed_report(row: ReviewSend, *, readings_before: int, revises: str | None) -> Dataset:
    """The clinician's reading as a verified Comprehensive SR in the results' series, after the model's SR.
    readings_before: how many readings of the study were sent before this one; revises: the SR UID of the
    latest of them (None for the first reading)."""
    study, result, model_send = row.study, row.study.result, row.study.result_send
    finding = SCT_PNEUMONIA if row.final_label == "PNEUMONIA" else SCT_NORMAL
    figures = {
        "final": row.get_final_label_display(),
        "model": result.get_label_display(),
        "probability": percent(result.probability, 1),
    }
    if row.agrees:
        reading = gettext(
            "Clinician's reading: %(final)s. The reviewer agrees with the model's call (%(model)s, P(pneumonia) "
            "%(probability)s)."
        )
    else:
        reading = gettext(
            "Clinician's reading: %(final)s. The reviewer disagrees with the model's call (%(model)s, P(pneumonia) "
            "%(probability)s)."
        )
    reading %= figures
    items: list[hd.sr.ContentItem] = [
        hd.sr.CodeContentItem(codes.DCM.Finding, finding, relationship_type="CONTAINS"),
        hd.sr.TextContentItem(codes.DCM.Comment, reading, relationship_type="CONTAINS"),
        hd.sr.TextContentItem(codes.DCM.AlgorithmName, MANUFACTURER, relationship_type="CONTAINS"),
        hd.sr.TextContentItem(codes.DCM.AlgorithmVersion, result.model_version, relationship_type="CONTAINS"),
    ]
    if row.note:
        note = gettext("Reviewer's note: %(note)s") % {"note": row.note}
        items.insert(2, hd.sr.TextContentItem(codes.DCM.Comment, note, relationship_type="CONTAINS"))
    # The predecessors: the model's SR, and the reading this one revises (so the PACS can chain the versions).
    previous = [model_send.sr_uid] + [uid for uid in [revises] if uid]
    versions = [_sr_reference(study, model_send.series_uid, uid) for uid in previous]
    return _report(
        study,
        items,
        model_send.series_uid,
        row.sr_uid,
        3 + readings_before,  # 1 and 2: the model's SR and Secondary Capture
        is_final=True,
        is_verified=True,
        verifying_observer_name=row.reviewer_name,
        verifying_organization=study.clinic.name,
        previous_versions=versions,
    )


def _sr_reference(study: Study, series_uid: str, sop_uid: str) -> Dataset:
    """An SR of ours in the study's results series, as a predecessor document."""
    ds = Dataset()
    ds.StudyInstanceUID = study.dicom.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = sop_uid
    ds.SOPClassUID = ComprehensiveSRStorage
    return ds


def secondary_capture(row: ResultSend, bgr: np.ndarray) -> Dataset:
    """bgr: the result's overlay, decoded -> the capture, legend burned in."""
    result: Result = row.study.result
    height, width = bgr.shape[:2]
    size = overlay.fitted_size(width, height, CAPTURE_SIDE)
    if size != (width, height):
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(legend(bgr, result), cv2.COLOR_BGR2RGB)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=reference_dataset(row.study),
        pixel_array=np.ascontiguousarray(rgb),
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=row.series_uid,
        series_number=SERIES_NUMBER,
        sop_instance_uid=row.sc_uid,
        instance_number=2,
        manufacturer=MANUFACTURER,
        patient_orientation=("L", "F"),
        specific_character_set=UTF8,
        transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    sc.BurnedInAnnotation = "YES"  # the legend
    sc.SeriesDescription = "AI decision support overlay"
    return sc


def legend(bgr: np.ndarray, result: Result) -> np.ndarray:
    """The overlay with a black band under it: the call, the probability against the threshold, the model,
    and the decision-support line, burned in."""
    w = bgr.shape[1]
    scale = max(0.4, w / 900)
    line = int(30 * scale)
    band = np.zeros((line * 3 + 10, w, 3), np.uint8)
    texts = [
        f"{result.label}  P(pneumonia) {result.probability:.1%}  threshold {result.threshold:.1%}",
        f"model {result.model_version}",
        DECISION_SUPPORT,
    ]
    for i, text in enumerate(texts):
        y = line * (i + 1)
        cv2.putText(band, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([bgr, band])
