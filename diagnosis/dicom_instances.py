"""A study's DICOM instance: its identifiers, and the study that already holds an instance sent again."""

from __future__ import annotations

import logging

from django.conf import settings

from diagnosis.models import Clinic, DicomInstance, DicomPeer, Study
from worker.ml.dicom import DicomHeader

logger = logging.getLogger(__name__)


def held_instance(clinic: Clinic, header: DicomHeader | None) -> Study | None:
    """The clinic's study that already holds this DICOM instance (its SOP Instance UID), if any: an instance sent
    again (C-STORE twice, or C-STORE then STOW-RS) maps to it, per clinic, and is neither stored nor judged again."""
    if header is None or not header.sop_uid:
        return None
    held = DicomInstance.objects.filter(study__clinic=clinic, study_uid=header.study_uid, sop_uid=header.sop_uid)
    instance = held.select_related("study").order_by("study__created").first()
    if instance is not None:
        logger.info("DICOM instance %s sent again: it is study %s", header.sop_uid, instance.study_id)
    return instance.study if instance is not None else None


def same_instance(a: DicomHeader | None, b: DicomHeader | None) -> bool:
    """Whether two headers name the same instance (its Study and SOP Instance UIDs)."""
    return a is not None and b is not None and bool(a.sop_uid) and (a.study_uid, a.sop_uid) == (b.study_uid, b.sop_uid)


def instance_row(study: Study, header: DicomHeader, peer: DicomPeer | None) -> DicomInstance:
    """The study's DICOM identifiers; patient name, birth date and accession only with DICOM_KEEP_IDENTIFIERS."""
    keep = settings.DICOM_KEEP_IDENTIFIERS
    return DicomInstance(
        study=study,
        study_uid=header.study_uid,
        series_uid=header.series_uid,
        sop_uid=header.sop_uid,
        sop_class_uid=header.sop_class_uid,
        accession=header.accession[:64] if keep else "",
        patient_name=header.patient_name[:200] if keep else "",
        birth_date=header.birth_date[:8] if keep else "",
        peer=peer,
    )
