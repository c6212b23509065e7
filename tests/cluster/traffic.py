"""What a clinic sends the cluster, and the figures a fault leaves: radiographs from the training set, page logins,
waiting for studies to end, and one line of figures per fault."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.cluster.records import Records
from tests.images import SHARED_DATA
from tools.cluster.services import wait_until

# Stored files are named <folder>/<2 hex>/<study id>-<name> (diagnosis.models): what a node's disk must never hold.
STORED = ("studies", "derived")


def radiographs(n: int, start: int = 0) -> list[Path]:
    """n real radiographs of the training set (normal and pneumonia in turn), each a different file."""
    normal = sorted((SHARED_DATA / "train" / "NORMAL").glob("*.jpeg"))
    pneumonia = sorted((SHARED_DATA / "train" / "PNEUMONIA").glob("*.jpeg"))
    return [(pneumonia if i % 2 else normal)[start + i // 2] for i in range(n)]


def wait_final(records: Records, study_ids: list[str], timeout: float = 300) -> float:
    """Seconds until every one of the studies is done, failed or rejected."""
    return wait_until(lambda: records.final(study_ids), timeout, f"{len(study_ids)} studies final")


def page_session(base: str, password: str, user: str = "north-clinician") -> requests.Session:
    """A logged-in browser session (its cookie is a row in the database: any web node knows it)."""
    s = requests.Session()
    s.get(f"{base}/accounts/login/", timeout=30)
    r = s.post(
        f"{base}/accounts/login/",
        data={"username": user, "password": password, "csrfmiddlewaretoken": s.cookies["csrftoken"]},
        headers={"Referer": f"{base}/"},
        timeout=30,
    )
    assert r.status_code < 400 and "sessionid" in s.cookies, r.status_code
    return s


@dataclass
class Figures:
    """A fault's outcome: submitted, done, lost (not final, or not done), duplicated (stored twice), recovery."""

    fault: str
    submitted: int
    done: int
    lost: int
    duplicated: int
    recovered_s: float

    def line(self) -> str:
        return (
            f"fault: {self.fault}: {self.submitted} studies submitted, {self.done} done, {self.lost} lost, "
            f"{self.duplicated} duplicated; all done {self.recovered_s:.1f} s after the fault"
        )


def figures(fault: str, records: Records, study_ids: list[str], began: float, files_sent: int) -> Figures:
    counts = records.statuses(study_ids)
    return Figures(
        fault=fault,
        submitted=files_sent,
        done=counts["done"],
        lost=files_sent - counts["done"],
        duplicated=max(0, len(set(study_ids)) - files_sent),
        recovered_s=time.monotonic() - began,
    )
