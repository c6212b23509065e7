"""A batch submitted through the REST API, by the clinic client, to a real worker, until all done."""

import csv
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from tests import images
from tests.needs import need_training_images
from xrayclient import Client, find_images, write_csv

pytestmark = pytest.mark.integration


def test_batch_through_the_api_to_a_real_worker(live_server, shared_worker, alice, tmp_path: Path) -> None:
    need_training_images()
    folder = tmp_path / "clinic"
    (folder / "sub").mkdir(parents=True)
    for i in range(5):
        data = images.real_radiograph("NORMAL" if i % 2 else "PNEUMONIA", i)
        (folder / ("sub" if i % 2 else "") / f"{i}.jpeg").write_bytes(data)
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    worker = shared_worker
    client = Client(live_server.url, Token.objects.create(user=alice).key)
    submitted = client.submit_all(find_images(folder), chunk=3, root=folder)
    assert len(submitted.batches) == 2 and len(submitted.study_ids) == 5
    assert [e["file_name"] for e in submitted.errors] == ["broken.png"]
    client.wait(submitted.batches, poll=0.3, timeout=180)
    rows = write_csv(tmp_path / "out.csv", client, submitted)
    assert rows == 6
    table = list(csv.DictReader((tmp_path / "out.csv").open()))
    by_name = {r["file_name"]: r for r in table}
    assert by_name["broken.png"]["status"] == "refused"
    assert "1.jpeg" in by_name  # the server keeps base names only; the study id tells same-named files apart
    finished = [r for r in table if r["status"] != "refused"]
    assert all(r["status"] == "done" for r in finished), (table, worker.log.read_text()[-2000:])
    assert all(r["label"] in ("NORMAL", "PNEUMONIA") and 0 <= float(r["probability"]) <= 1 for r in finished)
