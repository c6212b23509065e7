"""Results back to the PACS: for a finished DICOM study, a Comprehensive SR (label, calibrated probability,
threshold, model version) and a Secondary Capture of the overlay with a burned-in legend, both built in the
original study (diagnosis.pacs_documents), sent by C-STORE to the clinic's destination (DicomPeer). When a
reviewer then saves a reading, a verified SR follows in the same series: the clinician's final label, whether they
agree with the model, the verifying observer and organisation, and the model's SR as its predecessor document; a
revised reading is one more such SR.

The send is its own small state machine (ResultSend): PENDING -> SENT | FAILED (with the reason). Its UIDs are fixed
when the row is made, so a re-send stores the same instances again: idempotent at the PACS. The sweeper re-drives
PENDING sends left behind and FAILED ones up to MAX_ATTEMPTS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from uuid import UUID

import cv2
import numpy as np
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from diagnosis.models import Clinic, DicomInstance, ResultSend, ReviewSend, SendStatus
from diagnosis.task_names import SEND_RESULTS, SEND_REVIEW

# pynetdicom and the documents' module (highdicom) are imported where a send builds and stores, not here: the web
# process, every worker and every manage.py command import this module, and those two took a third of a second of
# CPU at each start (tests/test_layers.py holds the web process to it).

logger = logging.getLogger(__name__)


class SendError(Exception):
    """A send that cannot go ahead; its message is the reason recorded on the send's row."""


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
        transaction.on_commit(lambda: _enqueue(SEND_RESULTS, send.study_id), robust=True)
    return send


def schedule_many(study_ids: Sequence[UUID | str]) -> None:
    """schedule() for a batch of done studies, with one query to find the few that came from a DICOM peer."""
    from_peers = DicomInstance.objects.filter(study_id__in=study_ids, peer__isnull=False)
    for study_id in from_peers.values_list("study_id", flat=True):
        schedule(study_id)


def _enqueue(task_name: str, key: UUID | str) -> None:
    current_app.send_task(task_name, args=[str(key)])


def send(study_id: str) -> ResultSend:
    """Build and C-STORE the SR and the SC; record SENT or FAILED with the reason. Safe to run twice."""
    row = ResultSend.objects.select_related("study__dicom__peer", "study__result", "study__clinic").get(
        study_id=study_id
    )
    if row.status != SendStatus.SENT:
        from diagnosis import pacs_documents as documents

        with translation.override(_language(row.study.clinic)):
            _deliver(row, lambda: [documents.structured_report(row), documents.secondary_capture(row, _overlay(row))])
        row.refresh_from_db()
    return row


def send_review(send_id: int) -> ReviewSend:
    """Build and C-STORE a reading's verified SR (the row is made by reviews.review_study); record SENT or FAILED
    with the reason. Safe to run twice."""
    row = ReviewSend.objects.select_related(
        "study__dicom__peer", "study__result", "study__result_send", "study__clinic"
    ).get(pk=send_id)
    if row.status != SendStatus.SENT:
        with translation.override(_language(row.study.clinic)):
            _deliver(row, lambda: [_reviewed_report(row)])
        row.refresh_from_db()
    return row


def _overlay(row: ResultSend) -> np.ndarray:
    """The result's overlay as stored, decoded (BGR)."""
    with row.study.result.overlay.open("rb") as fh:
        bgr = cv2.imdecode(np.frombuffer(fh.read(), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SendError("the overlay image cannot be read")
    return bgr


def _language(clinic: Clinic) -> str:
    """The documents' text items are in the clinic's language (a worker has no request to take one from)."""
    return clinic.language or settings.LANGUAGE_CODE


def _reviewed_report(row: ReviewSend) -> Dataset:
    """The reading's SR, numbered after the readings sent before it and naming the latest of them as revised."""
    earlier = ReviewSend.objects.filter(study_id=row.study_id, pk__lt=row.pk)
    revises = earlier.values_list("sr_uid", flat=True).last()
    from diagnosis import pacs_documents as documents

    return documents.reviewed_report(row, readings_before=earlier.count(), revises=revises)


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


def _set(row: ResultSend | ReviewSend, status: str, reason: str, destination: str) -> None:
    sent_at = timezone.now() if status == SendStatus.SENT else None
    type(row).objects.filter(pk=row.pk).update(
        status=status, reason=reason, destination=destination, sent_at=sent_at, updated=timezone.now()
    )  # update() skips auto_now: the sweeper's staleness reads `updated`


def store(host: str, port: int, called_ae: str, datasets: list[Dataset]) -> None:
    """C-STORE each dataset in one association; raises SendError with the PACS's answer otherwise."""
    from pynetdicom import AE

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


def retry(study_id: UUID | str) -> int:
    """A clinic admin's retry (the study page's button): the study's FAILED sends, results and readings, back to
    PENDING with their attempts reset, queued once this commits. How many were queued (0: none had failed)."""
    now, queued = timezone.now(), 0
    for model, key, task_name in ((ResultSend, "study_id", SEND_RESULTS), (ReviewSend, "pk", SEND_REVIEW)):
        failed = model.objects.filter(study_id=study_id, status=SendStatus.FAILED)
        for value in [str(v) for v in failed.values_list(key, flat=True)]:
            model.objects.filter(**{key: value}).update(status=SendStatus.PENDING, attempts=0, updated=now)
            transaction.on_commit(lambda t=task_name, v=value: _enqueue(t, v), robust=True)  # type: ignore[misc]
            queued += 1
    return queued


def redrive() -> list[str]:
    """The sweeper's part: re-send PENDING and FAILED sends untouched for QUEUED_STALE_SECONDS, below MAX_ATTEMPTS
    (so a failing PACS is retried at that pace, not at every sweep, and a queued send is not queued twice): the
    results' (their study ids returned) and the readings' verified SRs."""
    results = _redrive(ResultSend, "study_id", SEND_RESULTS)
    _redrive(ReviewSend, "pk", SEND_REVIEW)
    return results


def _redrive(model: type[ResultSend] | type[ReviewSend], key: str, task_name: str) -> list[str]:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.QUEUED_STALE_SECONDS)
    due = model.objects.filter(
        status__in=(SendStatus.PENDING, SendStatus.FAILED), updated__lt=stale, attempts__lt=settings.MAX_ATTEMPTS
    )
    ids = [str(v) for v in due.values_list(key, flat=True)]
    for value in ids:
        model.objects.filter(**{key: value}).update(status=SendStatus.PENDING, updated=now)
        try:
            _enqueue(task_name, value)
        except Exception:  # a broker outage must not stop the sweep; the row stays PENDING for the next one
            logger.warning("could not queue the %s of %s %s", model.__name__, key, value, exc_info=True)
    return ids
