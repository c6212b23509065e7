"""The client's retries send the same request again, files and all: the cluster suite's object store outage showed a
retry after a 5xx sending every file empty (the first try had read them to their end), which the server refused
one by one as empty files, so the chunk's studies were lost to the clinic."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import xrayclient
from xrayclient import Client

CONTENT = b"\xff\xd8 a radiograph's bytes " * 50


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first POST, 202 to the next; keeps each POST's body and headers."""

    seen: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((dict(self.headers), body))
        status = 503 if len(self.seen) == 1 else 202
        answer = json.dumps({"batch": "b", "studies": [], "errors": []}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Flaky.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_retried_upload_sends_every_file_whole_again_with_the_same_key(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xrayclient.time, "sleep", lambda _: None)
    paths = [tmp_path / "a.jpeg", tmp_path / "b.jpeg"]
    for p in paths:
        p.write_bytes(CONTENT)
    Client(server, "t", retries=2).submit(paths)
    first, retry = Flaky.seen
    assert first[1].count(CONTENT) == retry[1].count(CONTENT) == 2 and len(first[1]) == len(retry[1])
    assert first[0]["Idempotency-Key"] == retry[0]["Idempotency-Key"]
