"""The round trip against a real Orthanc (Debian's `orthanc`): Orthanc pushes a chest radiograph to the listener
(REST /modalities/<name>/store), a real Celery worker judges it, and the SR and the Secondary Capture arrive back in
Orthanc in the same study, read there through its REST API; then a reviewer's reading arrives as a verified SR.
Prints the round-trip time."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image
from rest_framework.authtoken.models import Token

from diagnosis import reviews
from diagnosis.dicom_listener import start
from diagnosis.models import DicomPeer, JobStatus, ResultSend, Role, SendStatus, Study
from tests import dicoms, factories, images
from tests.integration.conftest import database_url, gunicorn_on, listening_socket, url_of, wait_for
from tests.needs import need, need_training_images

pytestmark = pytest.mark.integration
ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Orthanc:
    def __init__(self, folder: Path, listener_port: int, **extra: Any) -> None:
        """Orthanc binds the ports it is given: chosen free, one may be taken before it binds them (it then exits),
        so it is started again on others, at most three times; only this Orthanc answering counts as up."""
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "orthanc.log"
        for _ in range(3):
            self._start(folder, listener_port, extra)
            deadline = time.monotonic() + 30
            while self.proc.poll() is None and time.monotonic() < deadline and not self._up():
                time.sleep(0.1)
            if self._up():
                return
            self.stop()
        raise AssertionError(f"Orthanc did not start\n{self.log.read_text(errors='replace')[-3000:]}")

    def _start(self, folder: Path, listener_port: int, extra: dict[str, Any]) -> None:
        self.http, self.dicom = _free_port(), _free_port()
        self.url = f"http://127.0.0.1:{self.http}"
        config = {
            "Name": "test-pacs",
            "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "index"),
            "HttpPort": self.http,
            "DicomPort": self.dicom,
            "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomModalities": {"xray": ["XRAYAI", "127.0.0.1", listener_port]},
            "Plugins": [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.exists() else [],
            **extra,
        }
        (folder / "orthanc.json").write_text(json.dumps(config))
        self.proc = subprocess.Popen(
            [ORTHANC, str(folder / "orthanc.json")], stdout=self.log.open("ab"), stderr=subprocess.STDOUT
        )

    def _up(self) -> bool:
        """This Orthanc (alive, and named as configured) answers on its HTTP port."""
        try:
            answer = requests.get(f"{self.url}/system", timeout=1)
            return self.proc.poll() is None and answer.ok and answer.json().get("Name") == "test-pacs"
        except (requests.RequestException, ValueError):
            return False

    def get(self, path: str) -> Any:
        r = requests.get(f"{self.url}{path}", timeout=10)
        r.raise_for_status()
        return r.json() if "json" in r.headers.get("content-type", "") else r.content

    def post(self, path: str, data: bytes | str | None = None, **kwargs: Any) -> Any:
        r = requests.post(f"{self.url}{path}", data=data, timeout=60, **kwargs)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def listener(transactional_db: None) -> Iterator[int]:
    server = start("XRAYAI", "127.0.0.1", 0)
    yield int(server.server_address[1])
    server.shutdown()


def _require_orthanc() -> None:
    need(Path(ORTHANC).exists(), "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb; .ci/run does)")


@pytest.fixture
def orthanc(listener: int, tmp_path: Path) -> Iterator[Orthanc]:
    _require_orthanc()
    pacs = Orthanc(tmp_path / "orthanc", listener)
    yield pacs
    pacs.stop()


def test_orthanc_round_trip(alice, shared_worker, listener: int, orthanc: Orthanc) -> None:
    need_training_images()
    DicomPeer.objects.create(
        clinic=alice.membership.clinic,
        ae_title="ORTHANC",
        uploader=alice,
        send_ae_title="ORTHANC",
        send_host="127.0.0.1",
        send_port=orthanc.dicom,
    )
    worker = shared_worker
    # the round trip is timed on a warm worker: its child logs when the model is loaded
    wait_for(lambda: "loaded" in worker.log.read_text(errors="replace"), 120, "the model loaded", [worker.log])
    gray = np.asarray(Image.open(io.BytesIO(images.real_radiograph("PNEUMONIA", 0))).convert("L"))
    cxr = dicoms.radiograph(gray, "jpeg_lossless_12bit", PatientAge="004Y", ViewPosition="PA")
    original = pydicom.dcmread(io.BytesIO(cxr))
    instance = orthanc.post("/instances", cxr)
    study_id = instance["ParentStudy"]

    started = time.monotonic()
    orthanc.post("/modalities/xray/store", instance["ID"])  # Orthanc's C-STORE to our listener
    wait_for(lambda: Study.objects.filter(dicom__sop_uid=original.SOPInstanceUID).exists(), 30, "the study")
    study = Study.objects.get(dicom__sop_uid=original.SOPInstanceUID)
    wait_for(lambda: len(orthanc.get(f"/studies/{study_id}/instances")) >= 3, 180, "SR and SC in Orthanc", [worker.log])
    round_trip = time.monotonic() - started
    sent = ResultSend.objects.filter(study=study, status=SendStatus.SENT)
    wait_for(sent.exists, 30, "the send recorded as sent", [worker.log])  # recorded just after the C-STOREs
    print(f"\nround trip, C-STORE from Orthanc to the SR and SC back in Orthanc: {round_trip:.2f} s")

    study.refresh_from_db()
    assert study.job.status == JobStatus.DONE
    assert (study.patient_ref, study.age_years, study.projection) == ("MRN-0042", 4, "PA")
    back = [orthanc.get(f"/instances/{i['ID']}/file") for i in orthanc.get(f"/studies/{study_id}/instances")]
    by_modality = {ds.Modality: ds for ds in (pydicom.dcmread(io.BytesIO(b)) for b in back)}
    sr, sc = by_modality["SR"], by_modality["OT"] if "OT" in by_modality else by_modality.get("SC")
    assert sc is not None and sc.StudyInstanceUID == sr.StudyInstanceUID == original.StudyInstanceUID
    items = {item.ConceptNameCodeSequence[0].CodeMeaning: item for item in sr.ContentSequence}
    result = study.result
    assert items["Finding"].ConceptCodeSequence[0].CodeMeaning == result.get_label_display()
    probability = float(items["Calibrated probability of pneumonia"].MeasuredValueSequence[0].NumericValue)
    assert abs(probability - result.probability) < 1e-4
    assert items["Algorithm Version"].TextValue == result.model_version

    # A reviewer overrides the call: the reading follows as a verified SR in the same series (the real worker's
    # maintenance queue sends it), after the model's SR.
    reviewer = factories.make_member("rita", alice.membership.clinic, Role.REVIEWER)
    note = "Opacité rétrocardiaque — à revoir"
    reviews.review_study(reviewer, study, agrees=False, note=note)
    wait_for(lambda: len(orthanc.get(f"/studies/{study_id}/instances")) >= 4, 60, "the reading's SR", [worker.log])
    back = [orthanc.get(f"/instances/{i['ID']}/file") for i in orthanc.get(f"/studies/{study_id}/instances")]
    verified = [ds for ds in (pydicom.dcmread(io.BytesIO(b)) for b in back) if ds.Modality == "SR"]
    reading = next(ds for ds in verified if ds.VerificationFlag == "VERIFIED")
    assert reading.SeriesInstanceUID == sr.SeriesInstanceUID and reading.StudyInstanceUID == original.StudyInstanceUID
    items = {item.ConceptNameCodeSequence[0].CodeMeaning: item for item in reading.ContentSequence}
    assert items["Finding"].ConceptCodeSequence[0].CodeMeaning != result.get_label_display()
    comments = [i.TextValue for i in reading.ContentSequence if i.ConceptNameCodeSequence[0].CodeMeaning == "Comment"]
    assert f"Reviewer's note: {note}" in comments  # as written, read back from Orthanc
    predecessor = reading.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert predecessor.ReferencedSOPInstanceUID == sr.SOPInstanceUID


@pytest.fixture
def gunicorn(transactional_db: None, redis_url: str, tmp_path: Path, settings: Any) -> Iterator[str]:
    """The web server as production runs it (gunicorn, which decodes chunked bodies) on the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DJANGO_SECRET_KEY": "integration",
    }
    with listening_socket() as sock:
        log = tmp_path / "gunicorn.log"
        proc, url = gunicorn_on(sock, env, log), url_of(sock)
        try:
            wait_for(lambda: _answers(f"{url}/accounts/login/"), 30, "gunicorn answering", [log])
            yield url
        finally:
            proc.terminate()
            proc.wait(15)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def test_orthancs_dicomweb_client_stores_a_radiograph_through_stow_rs(alice, gunicorn: str, tmp_path: Path) -> None:
    """Another way in: Orthanc's DICOMweb plugin, as a client, sends an instance to this service's STOW-RS endpoint
    (/dicom-web/servers/<name>/stow) with a clinic member's API token, through gunicorn as in production: it becomes
    a study of that clinic, queued for the model, with its DICOM identity recorded. A knee radiograph is refused,
    and Orthanc reports the failure. (Orthanc sends the body chunked: Django alone read it as empty.)"""
    _require_orthanc()
    need(
        DICOMWEB_PLUGIN.exists(),
        f"Orthanc's DICOMweb plugin is not installed ({DICOMWEB_PLUGIN}: apt-get install orthanc-dicomweb)",
    )
    token = Token.objects.create(user=alice).key
    server = {"Url": f"{gunicorn}/dicomweb/", "HttpHeaders": {"Authorization": f"Token {token}"}}
    pacs = Orthanc(tmp_path / "orthanc", _free_port(), DicomWeb={"Enable": True, "Servers": {"xray": server}})
    try:
        cxr = dicoms.radiograph(images.chest_like(600, 500), ViewPosition="AP")
        original = pydicom.dcmread(io.BytesIO(cxr))
        instance = pacs.post("/instances", cxr)
        pacs.post("/dicom-web/servers/xray/stow", json={"Resources": [instance["ID"]]})
        study = Study.objects.get(dicom__sop_uid=original.SOPInstanceUID)
        assert study.clinic == alice.membership.clinic and study.owner == alice
        assert study.dicom.study_uid == original.StudyInstanceUID and study.projection == "AP"
        assert study.job.status == JobStatus.QUEUED and study.model_copy  # the worker has its working copy

        knee = dicoms.radiograph(images.chest_like(300, 300), BodyPartExamined="KNEE")
        bad = pacs.post("/instances", knee)
        refused = requests.post(f"{pacs.url}/dicom-web/servers/xray/stow", json={"Resources": [bad["ID"]]}, timeout=60)
        assert not refused.ok  # Orthanc reports that the server did not take it
        assert Study.objects.count() == 1
    finally:
        pacs.stop()
