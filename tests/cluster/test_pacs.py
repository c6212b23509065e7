"""The PACS round trip across nodes, against a real Orthanc (Debian's): Orthanc's C-STORE reaches the DICOM node, a
worker node judges the study, and the maintenance node sends the SR and the Secondary Capture back, drawing the
overlay it reads from the bucket (no node wrote it to a disk the maintenance node could read); then a reviewer's
reading, saved on a web node, follows as a verified SR."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image

from tests import dicoms
from tests.cluster.isolation import assert_isolated
from tests.cluster.records import Records
from tests.cluster.traffic import radiographs, wait_final
from tests.integration.test_orthanc import Orthanc, _require_orthanc
from tools.cluster.cluster import Cluster
from tools.cluster.services import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.integration]
PEER = """
import sys
import django
django.setup()
from django.contrib.auth.models import User
from diagnosis.models import Clinic, DicomPeer
DicomPeer.objects.create(clinic=Clinic.objects.get(slug="north"), ae_title="ORTHANC",
                         uploader=User.objects.get(username="north-clinician"), send_ae_title="ORTHANC",
                         send_host="127.0.0.1", send_port=int(sys.argv[1]))
"""


@pytest.fixture
def orthanc(cluster: Cluster, tmp_path: Path) -> Iterator[Orthanc]:
    _require_orthanc()
    pacs = Orthanc(tmp_path / "orthanc", cluster.dicom_port)
    try:
        cluster.nodes["maintenance"].run(sys.executable, "-c", PEER, str(pacs.dicom))  # Django admin's DICOM peer
        yield pacs
    finally:
        pacs.stop()


def test_orthancs_radiograph_comes_back_as_an_sr_and_a_capture_then_a_reviewers_sr(
    cluster: Cluster, records: Records, orthanc: Orthanc
) -> None:
    gray = np.asarray(Image.open(radiographs(1, start=500)[0]).convert("L"))
    cxr = dicoms.radiograph(gray, PatientAge="004Y", ViewPosition="PA")
    original = pydicom.dcmread(io.BytesIO(cxr))
    instance = orthanc.post("/instances", cxr)
    in_orthanc = f"/studies/{instance['ParentStudy']}/instances"
    began = time.monotonic()
    orthanc.post("/modalities/xray/store", instance["ID"])  # Orthanc's C-STORE to the DICOM node
    rows: list[tuple[object, ...]] = []

    def stored() -> bool:
        rows[:] = records.rows(
            "SELECT study_id::text FROM diagnosis_dicominstance WHERE sop_uid = %s", original.SOPInstanceUID
        )
        return bool(rows)

    wait_until(stored, 60, "the study stored by the DICOM node")
    study = str(rows[0][0])
    wait_final(records, [study])
    wait_until(lambda: len(orthanc.get(in_orthanc)) >= 3, 120, "the SR and the capture in Orthanc")
    print(f"\nround trip across nodes, Orthanc's C-STORE to the SR and capture back: {time.monotonic() - began:.1f} s")
    back = [pydicom.dcmread(io.BytesIO(orthanc.get(f"/instances/{i['ID']}/file"))) for i in orthanc.get(in_orthanc)]
    assert {ds.Modality for ds in back} >= {"SR"} and len(back) == 3
    assert {ds.StudyInstanceUID for ds in back} == {original.StudyInstanceUID}
    headers = {"Authorization": f"Token {cluster.tokens['north-reviewer']}"}
    saved = requests.post(
        f"{cluster.url}/api/v1/studies/{study}/review/", data={"decision": "disagree"}, headers=headers, timeout=30
    )
    assert saved.status_code in (200, 201), saved.text[:300]
    wait_until(lambda: len(orthanc.get(in_orthanc)) >= 4, 60, "the reviewer's SR in Orthanc")
    back = [pydicom.dcmread(io.BytesIO(orthanc.get(f"/instances/{i['ID']}/file"))) for i in orthanc.get(in_orthanc)]
    assert [ds.VerificationFlag for ds in back if ds.Modality == "SR"].count("VERIFIED") == 1


@pytest.mark.after_its_module
def test_after_the_round_trip_no_node_kept_a_file_on_its_own_disk(cluster: Cluster, records: Records) -> None:
    assert_isolated(cluster, records)
