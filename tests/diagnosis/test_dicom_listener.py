"""The C-STORE SCP: a configured caller's radiograph becomes a study of its clinic; a refused instance answers a
failure status with the reason; an unknown caller is refused at association and audited."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import pydicom
import pytest
from django.contrib.auth.models import User
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless
from pynetdicom import AE

from diagnosis.dicom_listener import start
from diagnosis.models import AuditAction, AuditEvent, DicomInstance, DicomPeer, JobStatus, Study
from tests import dicoms, images

pytestmark = pytest.mark.django_db(transaction=True)
OUR_AE = "XRAYTEST"
CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture
def listener(db: None) -> Iterator[int]:
    server = start(OUR_AE, "127.0.0.1", 0)
    yield int(server.server_address[1])
    server.shutdown()


@pytest.fixture
def peer(alice: User) -> DicomPeer:
    return DicomPeer.objects.create(clinic=alice.membership.clinic, ae_title="NORTHPACS", uploader=alice)


def _send(port: int, calling: str, *datasets: pydicom.Dataset) -> list[Any]:
    ae = AE(ae_title=calling)
    for sop in (dicoms.DX_CLASS, CT_CLASS):
        for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless):
            ae.add_requested_context(sop, syntax)  # one context each: the SCP accepts one syntax per context
    assoc = ae.associate("127.0.0.1", port, ae_title=OUR_AE)
    if not assoc.is_established:
        return [None]
    try:
        return [assoc.send_c_store(ds) for ds in datasets]
    finally:
        assoc.release()


def test_a_configured_caller_sends_a_study_to_its_clinic(listener: int, peer: DicomPeer) -> None:
    ds = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like(), "jpeg2000_lossless", PatientAge="003Y")))
    with open(str(get_testdata_file("CT_small.dcm")), "rb") as fh:
        ct = pydicom.dcmread(fh)
    ok, refused = _send(listener, "NORTHPACS", ds, ct)
    assert ok.Status == 0x0000
    assert refused.Status == 0xC000 and "CT" in refused.ErrorComment
    study = Study.objects.get()
    assert study.clinic == peer.clinic and study.owner == peer.uploader and study.age_years == 3
    assert study.job.status == JobStatus.QUEUED
    assert DicomInstance.objects.get(study=study).sop_uid == ds.SOPInstanceUID
    assert DicomInstance.objects.get(study=study).peer == peer


def test_an_unknown_caller_is_refused_at_association_and_audited(listener: int, peer: DicomPeer) -> None:
    ds = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like())))
    assert _send(listener, "STRANGER", ds) == [None]
    assert not Study.objects.exists()
    deadline = time.monotonic() + 10  # the SCP audits right after it has sent the rejection
    while not AuditEvent.objects.filter(action=AuditAction.DICOM_REFUSED).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    event = AuditEvent.objects.get(action=AuditAction.DICOM_REFUSED)
    assert event.detail["calling_ae"] == "STRANGER" and event.ip == "127.0.0.1"


def test_a_peer_whose_uploader_left_the_clinic_or_was_deactivated_is_refused(listener: int, peer: DicomPeer) -> None:
    # The peer's clinic decides where studies go: an uploader deactivated (or moved to another clinic) since the
    # peer was configured must not send them elsewhere, nor be told "try again" forever.
    ds = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like())))
    peer.uploader.is_active = False
    peer.uploader.save()
    (refused,) = _send(listener, "NORTHPACS", ds)
    assert refused.Status == 0xC000 and "not an active member" in refused.ErrorComment
    assert not Study.objects.exists()
