"""Results back to the PACS: for a finished DICOM study, a Comprehensive SR (label, calibrated probability,
threshold, model version) and a Secondary Capture of the overlay with a burned-in legend, both built with highdicom
in the original study (its Study Instance UID and patient module, a new series), sent by C-STORE to the clinic's
destination (DicomPeer). When a reviewer then saves a reading, a verified SR follows in the same series: the
clinician's final label, whether they agree with the model, the verifying observer and organisation, and the
model's SR as its predecessor document; a revised reading is one more such SR.

The send is its own small state machine (ResultSend): PENDING -> SENT | FAILED (with the reason). Its UIDs are fixed
when the row is made, so a re-send stores the same instances again: idempotent at the PACS. The sweeper re-drives
PENDING sends left behind and FAILED ones up to MAX_ATTEMPTS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import cv2
import highdicom as hd
import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ComprehensiveSRStorage, generate_uid
from pynetdicom import AE

from diagnosis.models import DicomInstance, Result, ResultSend, ReviewSend, SendStatus, Study
from worker.ml import overlay

logger = logging.getLogger(__name__)
MANUFACTURER = "Chest X-ray pneumonia service"
SERIES_NUMBER = 9901
DECISION_SUPPORT = "AI decision support - not a diagnosis; a clinician reads the image"
SCT_PNEUMONIA = hd.sr.CodedConcept("233604007", "SCT", "Pneumonia")
SCT_NORMAL = hd.sr.CodedConcept("17621005", "SCT", "Normal")
PROBABILITY = hd.sr.CodedConcept("PNEUMONIA-P", "99XRAYAI", "Calibrated probability of pneumonia")
THRESHOLD = hd.sr.CodedConcept("PNEUMONIA-T", "99XRAYAI", "Decision threshold")
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
# The overlay's longest side in the Secondary Capture, as the worker draws it (a NORMAL call's overlay is the
# study's 1024-pixel preview as it is): the PACS stores the capture uncompressed.
CAPTURE_SIDE = 768
UTF8 = "ISO_IR 192"  # what we send is UTF-8: a reviewer's note or name in any script arrives as written


def schedule(study_id: UUID | str) -> ResultSend | None:
    """After a study is done: make its send (once) when it came by DICOM from a peer that takes results."""
    dicom = DicomInstance.objects.select_related("peer").filter(study_id=study_id).first()
    if dicom is None or dicom.peer is None or not dicom.peer.sends_results:
        return None
    send, created = ResultSend.objects.get_or_create(
        study_id=study_id,
        defaults={"series_uid": generate_uid(), "sr_uid": generate_uid(), "sc_uid": generate_uid()},
    )
    if created:
        from diagnosis.tasks import send_results  # the task module imports this one

        transaction.on_commit(lambda: _enqueue(send_results, send.study_id), robust=True)
    return send


def schedule_many(study_ids: Sequence[UUID | str]) -> None:
    """schedule() for a batch of done studies, with one query to find the few that came from a DICOM peer."""
    from_peers = DicomInstance.objects.filter(study_id__in=study_ids, peer__isnull=False)
    for study_id in from_peers.values_list("study_id", flat=True):
        schedule(study_id)


def _enqueue(task: object, key: UUID | str) -> None:
    task.delay(str(key))  # type: ignore[attr-defined]


def send(study_id: str) -> ResultSend:
    """Build and C-STORE the SR and the SC; record SENT or FAILED with the reason. Safe to run twice."""
    row = ResultSend.objects.select_related("study__dicom__peer", "study__result").get(study_id=study_id)
    if row.status != SendStatus.SENT:
        _deliver(row, lambda: [structured_report(row), secondary_capture(row)])
        row.refresh_from_db()
    return row


def send_review(send_id: int) -> ReviewSend:
    """Build and C-STORE a reading's verified SR (the row is made by reviews.review_study); record SENT or FAILED
    with the reason. Safe to run twice."""
    row = ReviewSend.objects.select_related(
        "study__dicom__peer", "study__result", "study__result_send", "study__clinic"
    ).get(pk=send_id)
    if row.status != SendStatus.SENT:
        _deliver(row, lambda: [reviewed_report(row)])
        row.refresh_from_db()
    return row


def _deliver(row: ResultSend | ReviewSend, datasets: Callable[[], list[Dataset]]) -> None:
    """One attempt: C-STORE what `datasets` builds to the study's destination, then SENT, or FAILED with why."""
    type(row).objects.filter(pk=row.pk).update(attempts=F("attempts") + 1)
    peer = row.study.dicom.peer
    destination = f"{peer.send_ae_title}@{peer.send_host}:{peer.send_port}" if peer else ""
    try:
        if peer is None or not peer.sends_results:
            raise SendError("the clinic has no DICOM destination for results")
        store(peer.send_host, int(peer.send_port or 0), peer.send_ae_title, datasets())
    except Exception as exc:  # any failure is this send's state, never a crash of the worker
        logger.warning("%s of study %s not sent to %s: %s", type(row).__name__, row.study_id, destination, exc)
        _set(row, SendStatus.FAILED, f"{type(exc).__name__}: {exc}"[:2000], destination)
    else:
        _set(row, SendStatus.SENT, "", destination)


class SendError(Exception):
    pass


def _set(row: ResultSend | ReviewSend, status: str, reason: str, destination: str) -> None:
    sent_at = timezone.now() if status == SendStatus.SENT else None
    type(row).objects.filter(pk=row.pk).update(
        status=status, reason=reason, destination=destination, sent_at=sent_at, updated=timezone.now()
    )  # update() skips auto_now: the sweeper's staleness reads `updated`


def store(host: str, port: int, called_ae: str, datasets: list[Dataset]) -> None:
    """C-STORE each dataset in one association; raises SendError with the PACS's answer otherwise."""
    ae = AE(ae_title=settings.DICOM_AE_TITLE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = settings.DICOM_SEND_TIMEOUT
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate(host, port, ae_title=called_ae)
    if not assoc.is_established:
        raise SendError(f"association with {called_ae}@{host}:{port} refused or failed")
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            code = int(getattr(status, "Status", -1))
            if code not in (0x0000, 0xB000, 0xB007, 0xB006):
                raise SendError(f"C-STORE of {ds.SOPClassUID.name} answered status 0x{code & 0xFFFF:04X}")
    finally:
        assoc.release()


def reference_dataset(study: Study) -> Dataset:
    """The original study's patient and study modules, from what was kept (de-identified fields stay empty)."""
    dicom: DicomInstance = study.dicom
    ds = Dataset()
    ds.PatientName = dicom.patient_name
    ds.PatientID = study.patient_ref
    ds.PatientBirthDate = dicom.birth_date
    ds.PatientSex = study.sex
    ds.StudyInstanceUID = dicom.study_uid
    ds.SeriesInstanceUID = dicom.series_uid
    ds.SOPInstanceUID = dicom.sop_uid
    ds.SOPClassUID = dicom.sop_class_uid
    ds.AccessionNumber = dicom.accession
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
        hd.sr.TextContentItem(codes.DCM.Comment, DECISION_SUPPORT, relationship_type="CONTAINS"),
    ]
    return _report(study, items, row.series_uid, row.sr_uid, 1)


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


def reviewed_report(row: ReviewSend) -> Dataset:
    """The clinician's reading as a verified Comprehensive SR in the results' series, after the model's SR."""
    study, result, model_send = row.study, row.study.result, row.study.result_send
    finding = SCT_PNEUMONIA if row.final_label == "PNEUMONIA" else SCT_NORMAL
    verdict = "agrees" if row.agrees else "disagrees"
    reading = (
        f"Clinician's reading: {row.get_final_label_display()}. The reviewer {verdict} with the model's call "
        f"({result.get_label_display()}, P(pneumonia) {result.probability:.1%})."
    )
    items: list[hd.sr.ContentItem] = [
        hd.sr.CodeContentItem(codes.DCM.Finding, finding, relationship_type="CONTAINS"),
        hd.sr.TextContentItem(codes.DCM.Comment, reading, relationship_type="CONTAINS"),
        hd.sr.TextContentItem(codes.DCM.AlgorithmName, MANUFACTURER, relationship_type="CONTAINS"),
        hd.sr.TextContentItem(codes.DCM.AlgorithmVersion, result.model_version, relationship_type="CONTAINS"),
    ]
    if row.note:
        note = f"Reviewer's note: {row.note}"
        items.insert(2, hd.sr.TextContentItem(codes.DCM.Comment, note, relationship_type="CONTAINS"))
    earlier = ReviewSend.objects.filter(study_id=study.pk, pk__lt=row.pk)
    # The predecessors: the model's SR, and the reading this one revises (so the PACS can chain the versions).
    previous = [model_send.sr_uid] + [uid for uid in [earlier.values_list("sr_uid", flat=True).last()] if uid]
    versions = [_sr_reference(study, model_send.series_uid, uid) for uid in previous]
    return _report(
        study,
        items,
        model_send.series_uid,
        row.sr_uid,
        3 + earlier.count(),  # 1 and 2: the model's SR and Secondary Capture
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


def secondary_capture(row: ResultSend) -> Dataset:
    result: Result = row.study.result
    with result.overlay.open("rb") as fh:
        bgr = cv2.imdecode(np.frombuffer(fh.read(), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SendError("the overlay image cannot be read")
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


def redrive() -> list[str]:
    """The sweeper's part: re-send PENDING and FAILED sends untouched for QUEUED_STALE_SECONDS, below MAX_ATTEMPTS
    (so a failing PACS is retried at that pace, not at every sweep, and a queued send is not queued twice): the
    results' (their study ids returned) and the readings' verified SRs."""
    from diagnosis.tasks import send_results, send_review

    results = _redrive(ResultSend, "study_id", send_results)
    _redrive(ReviewSend, "pk", send_review)
    return results


def _redrive(model: type[ResultSend] | type[ReviewSend], key: str, task: object) -> list[str]:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.QUEUED_STALE_SECONDS)
    due = model.objects.filter(
        status__in=(SendStatus.PENDING, SendStatus.FAILED), updated__lt=stale, attempts__lt=settings.MAX_ATTEMPTS
    )
    ids = [str(v) for v in due.values_list(key, flat=True)]
    for value in ids:
        model.objects.filter(**{key: value}).update(status=SendStatus.PENDING, updated=now)
        try:
            _enqueue(task, value)
        except Exception:  # a broker outage must not stop the sweep; the row stays PENDING for the next one
            logger.warning("could not queue the %s of %s %s", model.__name__, key, value, exc_info=True)
    return ids
