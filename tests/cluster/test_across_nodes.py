"""A clinic's day on the cluster: uploads through nginx to two web nodes, judged by two worker nodes, a PACS's C-STORE
to the DICOM node, results and files from either web node, a review and an export, the maintenance node's
housekeeping in the bucket; and no node ever kept a file on its own disk."""

from __future__ import annotations

import io
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image
from pynetdicom import AE

from tests import dicoms
from tests.cluster.isolation import assert_isolated
from tests.cluster.records import Records
from tests.cluster.traffic import page_session, radiographs, wait_final
from tools.cluster.cluster import PEER, Cluster
from xrayclient import Client
from xrayweb.paths import DEFAULT_AE_TITLE

pytestmark = [pytest.mark.cluster, pytest.mark.integration]
KINDS = ("image", "preview", "thumbnail", "overlay", "heatmap")
# Two days later: every file stored today is past housekeeping's day of grace (a fresh bucket has no older ones).
LATER = """
import sys
from datetime import timedelta
import django
django.setup()
from django.core.management import call_command
from django.utils import timezone
now = timezone.now
timezone.now = lambda: now() + timedelta(days=2)
call_command("prune_orphan_files", *sys.argv[1:])
"""


@pytest.fixture(scope="module")
def bulk(cluster: Cluster, records: Records) -> dict[str, Any]:
    """24 radiographs in 6 requests of 4 through nginx, sent at once, all judged. One after another, a fast run's
    worker node judged each request's 4 before the next arrived, and the broker could hand all six to one node."""
    token = cluster.tokens["north-clinician"]
    paths = radiographs(24)
    began = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda i: Client(cluster.url, token).submit(paths[i : i + 4]), range(0, 24, 4)))
    sent = time.monotonic() - began
    ids = [s["id"] for answer in answers for s in answer["studies"]]
    took = wait_final(records, ids)
    print(f"\nbulk: 24 studies in 6 requests at once through nginx, sent in {sent:.1f} s, all final {took:.1f} s later")
    errors = [e for answer in answers for e in answer["errors"]]
    return {"ids": ids, "client": Client(cluster.url, token), "errors": errors}


def web(cluster: Cluster, i: int) -> str:
    return f"http://127.0.0.1:{cluster.web_ports[i]}"


def test_bulk_uploads_go_through_both_web_nodes_and_are_judged_by_both_workers(
    cluster: Cluster, records: Records, bulk: dict[str, Any]
) -> None:
    assert not bulk["errors"]
    assert records.statuses(bulk["ids"]) == {"done": 24}
    assert set(records.judged_by(bulk["ids"])) == {"worker0", "worker1"}
    for name in ("web0", "web1"):  # nginx spread the six requests over both
        assert cluster.nodes[name].logged(r'"POST /api/v1/studies/ HTTP/1\.[01]" 202'), name


def test_page_uploads_and_their_session_work_on_either_web_node(cluster: Cluster, records: Records) -> None:
    s = page_session(cluster.url, cluster.password)
    ids = []
    for path in radiographs(2, start=50):
        r = s.post(
            f"{cluster.url}/upload/",
            files={"images": (path.name, path.read_bytes())},
            headers={"Accept": "application/json", "X-CSRFToken": s.cookies["csrftoken"], "Referer": cluster.url},
            timeout=60,
        )
        assert r.status_code == 200, r.text[:300]
        ids += [study["id"] for study in r.json()["studies"]]
    wait_final(records, ids)
    for i in (0, 1):  # the session and the study pages, from each node directly
        status = s.get(f"{web(cluster, i)}/studies/{ids[0]}/status/", timeout=30).json()
        assert status["final"] and s.get(f"{web(cluster, i)}/studies/{ids[1]}/", timeout=30).status_code == 200


def test_a_pacs_c_store_to_the_dicom_node_becomes_a_judged_study(cluster: Cluster, records: Records) -> None:
    gray = np.asarray(Image.open(radiographs(1, start=60)[0]).convert("L"))
    ds = pydicom.dcmread(io.BytesIO(dicoms.radiograph(gray)))
    ae = AE(ae_title=PEER)
    ae.add_requested_context(dicoms.DX_CLASS, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", cluster.dicom_port, ae_title=DEFAULT_AE_TITLE)
    assert assoc.is_established
    try:
        assert assoc.send_c_store(ds).Status == 0x0000
    finally:
        assoc.release()
    sql = "SELECT study_id::text FROM diagnosis_dicominstance WHERE sop_uid = %s"
    [(study,)] = records.rows(sql, ds.SOPInstanceUID)
    wait_final(records, [study])
    assert records.statuses([study]) == {"done": 1}


def test_results_and_files_are_the_same_from_either_web_node(cluster: Cluster, bulk: dict[str, Any]) -> None:
    """Each file through the API (with a token) and the pages (with a session), from each web node directly."""
    headers = {"Authorization": f"Token {cluster.tokens['north-clinician']}"}
    pneumonia = next(s for s in bulk["client"].studies(label="PNEUMONIA") if s["id"] in bulk["ids"])
    page = page_session(cluster.url, cluster.password)
    for kind in KINDS:
        answers = [page.get(f"{web(cluster, i)}/studies/{pneumonia['id']}/files/{kind}/", timeout=30) for i in (0, 1)]
        if kind in ("image", "heatmap", "overlay"):
            url = f"/api/v1/studies/{pneumonia['id']}/{kind}/"
            answers += [requests.get(f"{web(cluster, i)}{url}", headers=headers, timeout=30) for i in (0, 1)]
        assert {a.status_code for a in answers} == {200}, kind
        assert len({a.content for a in answers}) == 1 and len(answers[0].content) > 100, kind
    details = [
        requests.get(f"{web(cluster, i)}/api/v1/studies/{pneumonia['id']}/", headers=headers, timeout=30).json()
        for i in (0, 1)
    ]
    assert details[0]["probability"] == details[1]["probability"] == pneumonia["probability"]


def test_a_review_saved_on_one_web_node_is_read_and_exported_on_the_other(
    cluster: Cluster, bulk: dict[str, Any]
) -> None:
    study = bulk["ids"][0]
    headers = {"Authorization": f"Token {cluster.tokens['north-reviewer']}"}
    saved = requests.post(
        f"{web(cluster, 0)}/api/v1/studies/{study}/review/",
        data={"decision": "agree", "note": "read on node 0"},
        headers=headers,
        timeout=30,
    )
    assert saved.status_code in (200, 201), saved.text[:300]
    read = requests.get(f"{web(cluster, 1)}/api/v1/studies/{study}/", headers=headers, timeout=30).json()
    assert read["review"]["note"] == "read on node 0"
    reviewer = page_session(web(cluster, 1), cluster.password, "north-reviewer")
    csv = reviewer.get(f"{web(cluster, 0)}/worklist/export.csv?reviewed=yes", timeout=60)
    assert csv.status_code == 200 and study in csv.text and "read on node 0" in csv.text


def test_housekeeping_on_the_maintenance_node_lists_and_prunes_objects_in_the_bucket(
    cluster: Cluster, records: Records, bulk: dict[str, Any]
) -> None:
    """Files a killed process left behind (no row names them) are objects in the bucket, not files in a folder."""
    gone = "ab0c1d2e-0000-4000-8000-000000000001"  # a study id no row has
    orphans = {f"studies/ab/{gone}-original.png", f"derived/ab/{gone}-preview.jpg"}
    s3 = cluster.store.client()
    for key in orphans:
        s3.put_object(Bucket=cluster.store.BUCKET, Key=key, Body=b"left by a killed process")
    node = cluster.nodes["maintenance"]
    listed = node.run(sys.executable, "-c", LATER, "--dry-run").splitlines()
    kept = records.stored_names()
    assert orphans <= set(listed) and not kept & set(listed)
    assert orphans <= cluster.store.keys()  # a dry run removes nothing
    began = time.monotonic()
    node.run(sys.executable, "-c", LATER)
    assert not orphans & cluster.store.keys() and kept <= cluster.store.keys()
    print(f"\nhousekeeping: {len(orphans)} orphan objects found among {len(cluster.store.keys())}, "
          f"pruned in {time.monotonic() - began:.1f} s")  # fmt: skip


@pytest.mark.after_its_module
def test_no_node_kept_a_file_on_its_own_disk_and_every_file_is_in_the_bucket(
    cluster: Cluster, records: Records
) -> None:
    assert_isolated(cluster, records)
