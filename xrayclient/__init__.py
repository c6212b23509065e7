"""A small client for the REST API (requests only, no Django): bulk upload, wait, collect results.

    python -m xrayclient DIR --server URL --token KEY [--chunk 50] [--csv results.csv]

Used by `manage.py submit_folder` and the API benchmark; clinics can copy this folder and need only `requests`.
"""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


@dataclass
class Submitted:
    study_ids: dict[str, str] = field(default_factory=dict)  # study id -> file name
    batches: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)


class Client:
    def __init__(self, server: str, token: str, timeout: float = 120.0, retries: int = 5) -> None:
        self.base = server.rstrip("/") + "/api/v1"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.timeout = timeout
        self.retries = retries

    def _request(
        self, method: str, url: str, before: Callable[[], None] | None = None, **kwargs: Any
    ) -> requests.Response:
        """Retries connection errors, 429 (honouring Retry-After) and 5xx with backoff; `before` runs before each
        try (it rewinds the files a retry sends again)."""
        for attempt in range(self.retries + 1):
            if before:
                before()
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.ConnectionError:
                if attempt == self.retries:
                    raise
                time.sleep(min(30, 2**attempt))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == self.retries:
                    response.raise_for_status()
                time.sleep(float(response.headers.get("Retry-After") or min(30, 2**attempt)))
                continue
            response.raise_for_status()
            return response
        raise RuntimeError("unreachable")

    def submit(self, paths: Sequence[Path], root: Path | None = None) -> dict[str, Any]:
        """POST one chunk of files as one batch; an Idempotency-Key makes the retries safe."""
        key = str(uuid.uuid4())
        with ExitStack() as stack:
            files = [
                ("images", (str(p.relative_to(root)) if root else p.name, stack.enter_context(p.open("rb"))))
                for p in paths
            ]

            def rewind() -> None:  # each try reads the files to their end: a retry sends them from the start
                for _, (_, fh) in files:
                    fh.seek(0)

            url, headers = f"{self.base}/studies/", {"Idempotency-Key": key}
            return dict(self._request("POST", url, before=rewind, files=files, headers=headers).json())

    def batch(self, batch_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"{self.base}/batches/{batch_id}/").json())

    def studies(self, **filters: str) -> Iterator[dict[str, Any]]:
        url: str | None = f"{self.base}/studies/"
        params: dict[str, str] | None = filters
        while url:
            page = self._request("GET", url, params=params).json()
            yield from page["results"]
            url, params = page["next"], None

    def submit_all(
        self, paths: Sequence[Path], chunk: int, root: Path | None = None, progress: Callable[[int], None] | None = None
    ) -> Submitted:
        out = Submitted()
        for i in range(0, len(paths), chunk):
            part = paths[i : i + chunk]
            answer = self.submit(part, root)
            out.batches.append(answer["batch"])
            out.study_ids.update({s["id"]: s["file_name"] for s in answer["studies"]})
            out.errors.extend(answer["errors"])
            if progress:
                progress(len(part))
        return out

    def wait(
        self,
        batches: Sequence[str],
        poll: float = 1.0,
        timeout: float = 3600.0,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Block until every study of these batches is done, failed or rejected. Each round asks about the batches
        in order up to the first one not finished (a clinic's studies are judged in arrival order, so the later
        ones are not finished either); a finished batch is never asked again (a final study never changes)."""
        deadline = time.monotonic() + timeout
        finished_before = 0
        states: dict[str, dict[str, Any]] = {}
        while True:
            for b in batches:
                if b not in states or states[b]["progress"] < 1.0:
                    states[b] = self.batch(b)
                    if states[b]["progress"] < 1.0:
                        break
            finished = sum(round(s["progress"] * s["total"]) for s in states.values())
            if progress and finished > finished_before:
                progress(finished - finished_before)
                finished_before = finished
            if len(states) == len(set(batches)) and all(s["progress"] >= 1.0 for s in states.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{finished} studies finished before the timeout")
            time.sleep(poll)


def find_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def write_csv(path: Path, client: Client, submitted: Submitted) -> int:
    rows = 0
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file_name", "study_id", "status", "label", "probability", "error"])
        for batch in submitted.batches:
            for s in client.studies(batch=batch):
                writer.writerow(
                    [
                        s["file_name"],
                        s["id"],
                        s["status"],
                        s["label"] or "",
                        "" if s["probability"] is None else f"{s['probability']:.4f}",
                        s["error"] or "",
                    ]
                )
                rows += 1
        for e in submitted.errors:
            writer.writerow([e["file_name"], "", "refused", "", "", e["error"]])
            rows += 1
    return rows
