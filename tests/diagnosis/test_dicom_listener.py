"""The C-STORE SCP: a configured caller's radiograph becomes a study of its clinic; a refused instance answers a
failure status with the reason; an unknown caller is refused at association and audited."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.contrib.auth.models import User
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless
from pynetdicom import AE

from diagnosis.audit_words import describe
from diagnosis.dicom_listener import start
from diagnosis.models import (
    AuditAction,
    AuditEvent,
    Clinic,
    DicomInstance,
    DicomPeer,
    InferenceJob,
    JobStatus,
    Membership,
    Study,
)
from tests import dicoms, images
from tests.diagnosis.api.test_stow import _post, _seq
from tests.factories import token_client
from tests.integration.conftest import ROOT, database_url

pytestmark = pytest.mark.django_db(transaction=True)
OUR_AE = "XRAYTEST"
CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture
def listener(db: None) -> Iterator[int]:
    server = start(OUR_AE, "127.0.0.1", 0)
    yield int(server.server_address[1])
    server.shutdown()


@pytest.fixture
def listener_process(db: None, settings: Any, tmp_path: Path) -> Iterator[int]:
    """`manage.py dicom_listener` as production runs it: its own process, on the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "REDIS_URL": "redis://127.0.0.1:9/0",  # no broker: the jobs stay queued in the database
        "DJANGO_SECRET_KEY": "listener-test",
    }
    argv = [sys.executable, "manage.py", "dicom_listener", "--ae-title", OUR_AE, "--host", "127.0.0.1", "--port", "0"]
    log = tmp_path / "listener.log"
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log.open("wb"), text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "on port" in line, log.read_text()
        yield int(line.split()[-1])
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture
def peer(alice: User) -> DicomPeer:
    return DicomPeer.objects.create(clinic=alice.membership.clinic, ae_title="NORTHPACS", uploader=alice)


def _requesting(calling: str) -> AE:
    ae = AE(ae_title=calling)
    for sop in (dicoms.DX_CLASS, CT_CLASS):
        for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless):
            ae.add_requested_context(sop, syntax)  # one context each: the SCP accepts one syntax per context
    return ae


def _send(port: int, calling: str, *datasets: pydicom.Dataset, called: str = OUR_AE) -> list[Any]:
    assoc = _requesting(calling).associate("127.0.0.1", port, ae_title=called)
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


def _refusal(calling: str) -> AuditEvent:
    deadline = time.monotonic() + 10  # the SCP audits right after it has sent the rejection
    refusals = AuditEvent.objects.filter(action=AuditAction.DICOM_REFUSED, detail__calling_ae=calling)
    while not refusals.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return refusals.get()


def test_each_refusal_is_audited_as_what_it_was_with_the_clinic_of_a_known_caller(
    listener: int, peer: DicomPeer
) -> None:
    """From an outside red-team pass: a known peer calling the wrong called AE title was audited as an "unknown
    calling AE title", with no clinic."""
    ds = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like())))
    assert _send(listener, "NORTHPACS", ds, called="NOTUS") == [None]
    wrong = _refusal("NORTHPACS")
    assert wrong.clinic == peer.clinic and wrong.detail["called_ae"] == "NOTUS"
    assert "known peer called AE title NOTUS" in wrong.detail["reason"] and "unknown" not in wrong.detail["reason"]
    assert "NOTUS" in describe(wrong) and OUR_AE in describe(wrong)
    assert _send(listener, "STRANGER", ds) == [None]
    stranger = _refusal("STRANGER")
    assert stranger.clinic is None and stranger.detail["reason"] == "unknown calling AE title"


def test_the_association_limit_comes_from_settings_and_a_refusal_beyond_it_says_so(
    db: None, peer: DicomPeer, settings: Any
) -> None:
    settings.DICOM_MAX_ASSOCIATIONS = 2
    server = start(OUR_AE, "127.0.0.1", 0)
    port = int(server.server_address[1])
    held = [_requesting("NORTHPACS").associate("127.0.0.1", port, ae_title=OUR_AE) for _ in range(3)]
    try:
        assert [a.is_established for a in held] == [True, True, False]
        event = _refusal("NORTHPACS")
        assert "too many associations at once (the limit is 2)" in event.detail["reason"]
        assert event.clinic == peer.clinic
    finally:
        for assoc in held:
            assoc.release()
        server.shutdown()


def test_a_listener_process_takes_20_associations_at_once(listener_process: int, peer: DicomPeer) -> None:
    """From an outside red-team pass: pynetdicom's default of 10 refused all 20 of a PACS's parallel sends."""
    ds = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like())))
    with ThreadPoolExecutor(20) as pool:
        held = list(
            pool.map(
                lambda _: _requesting("NORTHPACS").associate("127.0.0.1", listener_process, ae_title=OUR_AE), range(20)
            )
        )
    try:
        assert all(a.is_established for a in held)  # all 20 open at once
        assert held[-1].send_c_store(ds).Status == 0x0000
    finally:
        for assoc in held:
            assoc.release()
    assert not AuditEvent.objects.filter(action=AuditAction.DICOM_REFUSED).exists()
    assert Study.objects.count() == 1


@pytest.mark.parametrize("since", ["deactivated", "moved to clinic B"])
def test_a_peer_whose_uploader_left_the_clinic_or_was_deactivated_is_refused(
    listener: int, peer: DicomPeer, clinic_b: Clinic, since: str
) -> None:
    # The peer's clinic decides where studies go: an uploader deactivated (or moved to another clinic) since the
    # peer was configured must not send them elsewhere, nor be told "try again" forever.
    ds = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like())))
    if since == "deactivated":
        peer.uploader.is_active = False
        peer.uploader.save()
    else:  # still active, now a member of clinic B only
        Membership.objects.filter(user=peer.uploader).update(clinic=clinic_b)
    (refused,) = _send(listener, "NORTHPACS", ds)
    assert refused.Status == 0xC000 and "not an active member" in refused.ErrorComment
    assert not Study.objects.exists()


def test_the_same_instance_sent_twice_to_a_listener_process_is_one_study(
    listener_process: int, peer: DicomPeer, alice: User
) -> None:
    """From an outside red-team pass: each C-STORE of one SOP Instance UID made a new study, judged and sent back
    again (one instance became 3 studies). A PACS retries: the re-sent instance maps to the study that has it,
    answered with success, stored and queued once; a STOW-RS of it afterwards too."""
    data = dicoms.radiograph(images.chest_like())
    ds = pydicom.dcmread(io.BytesIO(data))
    (first,) = _send(listener_process, "NORTHPACS", ds)
    (again,) = _send(listener_process, "NORTHPACS", ds)  # a second association, as a PACS's retry
    assert first.Status == again.Status == 0x0000
    study = Study.objects.get()
    assert DicomInstance.objects.get().study == study and InferenceJob.objects.count() == 1
    stow = _post(token_client(alice), data)
    assert stow.status_code == 200, stow.content
    url = _seq(stow.json(), "00081199")[0]["00081190"]["Value"][0]
    assert url.endswith(f"/studies/{study.pk}/") and Study.objects.count() == 1
    assert InferenceJob.objects.count() == 1


def test_the_same_instance_sent_by_another_clinic_is_that_clinics_own_study(
    listener_process: int, peer: DicomPeer, bob: User
) -> None:
    DicomPeer.objects.create(clinic=bob.membership.clinic, ae_title="RIVERPACS", uploader=bob)
    ds = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like())))
    assert [r.Status for r in _send(listener_process, "NORTHPACS", ds, ds)] == [0, 0]  # twice in one association
    assert [r.Status for r in _send(listener_process, "RIVERPACS", ds)] == [0]
    assert sorted(s.clinic_id for s in Study.objects.all()) == sorted([peer.clinic_id, bob.membership.clinic_id])
