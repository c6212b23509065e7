"""deploy/nginx.conf, the compose stack's front, run by a real nginx (Debian's) in front of a recording upstream.

Only what ties the file to Docker is rewritten: the listening port, and `web:8000` (the upstream here records
what reaches it). It checks what the file is there for: a request's body is read whole before the upstream sees
anything (a slow client holds nginx, not one of gunicorn's threads), a body over the limit never reaches it, the
client's address is appended to X-Forwarded-For, and X-Forwarded-Proto is the TLS terminator's or nginx's own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import wait_for
from tests.needs import need

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Upstream:
    """An HTTP/1.1 server that records each request it receives (its head, its body, when) and answers 200 "ok"."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, body = data.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
            headers[":request"] = lines[0]
            length = int(headers.get("content-length", "0"))
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            self.seen.append((headers, body))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, Upstream]]:
    """nginx with deploy/nginx.conf in front of an Upstream: (nginx's base URL, the upstream)."""
    need(Path(NGINX).exists(), "nginx is not installed (apt-get install nginx; .ci/run does)")
    upstream = Upstream()
    proc, base = None, ""
    try:
        for _ in range(3):  # nginx cannot listen on port 0: a free port may be taken before it binds; try another
            proc, base = _start(tmp_path, upstream.port)
            if proc.poll() is None:
                break
        assert proc is not None and proc.poll() is None, (tmp_path / "error.log").read_text(errors="replace")
        yield base, upstream
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        upstream.close()


def _start(tmp_path: Path, upstream_port: int) -> tuple[subprocess.Popen[bytes], str]:
    """nginx on a free port with the site rewritten for it; returned once it answers, or once it has exited."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "listen 8000;" in site and "set $web http://web:8000;" in site
    site = site.replace("listen 8000;", f"listen 127.0.0.1:{port};")
    site = site.replace("set $web http://web:8000;", f"set $web http://127.0.0.1:{upstream_port};")
    (tmp_path / "site.conf").write_text(site)
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = " ".join(f"{kind}_temp_path {tmp_path / kind};" for kind in kinds)
    user = "user root;" if os.geteuid() == 0 else ""  # its workers would be nobody, who cannot write tmp_path
    (tmp_path / "nginx.conf").write_text(
        f"{user} daemon off; pid {tmp_path / 'nginx.pid'}; error_log {tmp_path / 'error.log'};\n"
        f"events {{}}\nhttp {{ access_log off; {temp} include {tmp_path / 'site.conf'}; }}\n"
    )
    proc = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)])
    base = f"http://127.0.0.1:{port}"

    def up_or_gone() -> bool:
        if proc.poll() is not None:
            return True
        try:
            return requests.get(f"{base}/nginx-health", timeout=1).ok
        except requests.RequestException:
            return False

    wait_for(up_or_gone, 20, "nginx answering", [tmp_path / "error.log"])
    return proc, base


def test_its_own_health_check_does_not_reach_the_app(proxy: tuple[str, Upstream]) -> None:
    base, upstream = proxy
    r = requests.get(f"{base}/nginx-health", timeout=5)
    assert r.status_code == 200 and r.text == "ok\n" and upstream.connections == 0


def test_a_slow_body_reaches_the_app_only_once_it_is_whole(proxy: tuple[str, Upstream]) -> None:
    """A red-team pass tied up every gunicorn thread with 40 bodies sent a byte a second."""
    base, upstream = proxy
    body = b"username=a&password=" + b"x" * 5000
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as slow:
        head = f"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        slow.sendall((head + "Content-Type: application/x-www-form-urlencoded\r\n\r\n").encode() + body[:100])
        time.sleep(1.0)
        assert upstream.connections == 0  # nginx holds it: the app has not been asked to read a byte
        assert requests.get(f"{base}/other/", timeout=5).status_code == 200  # and others go through meanwhile
        slow.sendall(body[100:])
        assert b"200 OK" in slow.recv(4096)
    assert [h[":request"] for h, _ in upstream.seen] == ["GET /other/ HTTP/1.1", "POST /accounts/login/ HTTP/1.1"]
    assert upstream.seen[1][1] == body


def test_a_body_over_the_limit_is_refused_without_reaching_the_app(proxy: tuple[str, Upstream]) -> None:
    base, upstream = proxy
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"POST /api/v1/studies/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3000000000\r\n\r\n")
        assert client.recv(4096).startswith(b"HTTP/1.1 413")
    assert upstream.connections == 0


def test_the_clients_address_and_scheme_are_passed_on_and_cannot_be_forged(proxy: tuple[str, Upstream]) -> None:
    base, upstream = proxy
    requests.get(f"{base}/a/", timeout=5)
    requests.get(f"{base}/b/", headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}, timeout=5)
    plain, forwarded = (headers for headers, _ in upstream.seen)
    assert plain["x-forwarded-for"] == "127.0.0.1" and plain["x-forwarded-proto"] == "http"
    # With AUDIT_PROXY_COUNT=1 the app takes the last address, the one nginx added: a client's own is ignored.
    assert forwarded["x-forwarded-for"] == "6.6.6.6, 127.0.0.1"
    assert forwarded["x-forwarded-proto"] == "https"  # a TLS terminator in front says so
    assert plain["host"].startswith("127.0.0.1")
