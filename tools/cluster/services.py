"""What the nodes of a cluster share, and nothing else: a PostgreSQL database, a Redis and an S3 bucket; and nginx in
front of the web nodes. Each is started (or created) here and ended by its stop(), so a test or a benchmark owns it
whole: the database is made for the run and dropped after it, the Redis and the object store are processes of
their own that a fault can restart without touching anything anyone else uses."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import psycopg
import requests

from xrayweb.launch import ROOT, child, free_port, start_embedded_redis

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
S3_CREDENTIALS = {"S3_ACCESS_KEY_ID": "cluster", "S3_SECRET_ACCESS_KEY": "cluster-secret", "S3_REGION": "us-east-1"}


def wait_until(ready: Callable[[], object], timeout: float, what: str) -> float:
    """Poll `ready()` until it is true; the seconds it took. TimeoutError after `timeout`."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if ready():
            return time.monotonic() - began
        time.sleep(0.1)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


class Database:
    """A database of its own on the PostgreSQL server of `server_url` (any database there; only the server is used)."""

    def __init__(self, server_url: str, name: str) -> None:
        parts = urlsplit(server_url)
        self.admin = urlunsplit(parts._replace(path="/postgres"))
        self.url = urlunsplit(parts._replace(path=f"/{name}"))
        self.name = name
        self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._run(f'CREATE DATABASE "{name}"')

    def _run(self, sql: str) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql.encode())

    def stop(self) -> None:
        self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Redis:
    """A redis-server of its own (no persistence, as the compose file runs it): a restart loses every message."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc, self.url = start_embedded_redis(folder)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def start(self) -> None:
        self.proc, _ = start_embedded_redis(self.folder, self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


class ObjectStore:
    """moto's S3 server in a process of its own (tools.cluster.objectstore), with one bucket."""

    BUCKET = "xray-cluster"

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "tools.cluster.objectstore", str(self.port)]
        self.proc = child(argv, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        self.log = log
        wait_until(self.answers, 60, "the object store answering")
        self.client().create_bucket(Bucket=self.BUCKET)

    def env(self) -> dict[str, str]:
        return {"S3_BUCKET": self.BUCKET, "S3_ENDPOINT_URL": self.url, **S3_CREDENTIALS}

    def client(self) -> Any:
        """A boto3 S3 client of the store (typed Any: boto3 ships no stubs here)."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=S3_CREDENTIALS["S3_REGION"],
            aws_access_key_id=S3_CREDENTIALS["S3_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_CREDENTIALS["S3_SECRET_ACCESS_KEY"],
        )

    def keys(self) -> set[str]:
        """Every object's key in the bucket."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.BUCKET)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def calls(self) -> Counter[str]:
        """The calls the store has answered so far, by HTTP method (its log has a line for each)."""
        return Counter(re.findall(r'"(GET|PUT|HEAD|POST|DELETE) /', self.log.read_text(errors="replace")))

    def answers(self) -> bool:
        try:
            return requests.get(self.url, timeout=2).status_code < 500
        except requests.RequestException:
            return False

    def outage(self) -> None:
        """Stop listening: every call of every node is refused until back()."""
        os.kill(self.proc.pid, signal.SIGUSR1)
        wait_until(lambda: not self.answers(), 10, "the object store going down")

    def back(self) -> None:
        os.kill(self.proc.pid, signal.SIGUSR2)
        wait_until(self.answers, 30, "the object store coming back")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


class Front:
    """nginx with deploy/nginx.conf, its one upstream (`web:8000` in the compose stack) made the web nodes' group."""

    def __init__(self, folder: Path, upstreams: list[int]) -> None:
        if not Path(NGINX).exists():
            raise FileNotFoundError("nginx is not installed (apt-get install nginx; .ci/run does)")
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = (ROOT / "deploy" / "nginx.conf").read_text()
        assert "listen 8000;" in site and "set $web http://web:8000;" in site
        site = site.replace("listen 8000;", f"listen 127.0.0.1:{self.port};")
        # A variable naming an upstream group is looked up among the groups first: no resolver is asked.
        site = site.replace("set $web http://web:8000;", "set $web http://xray_web;")
        group = " ".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in upstreams)
        temp = " ".join(f"{k}_temp_path {folder / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        user = "user root;" if os.geteuid() == 0 else ""  # its workers would be nobody, who cannot write the folder
        (folder / "site.conf").write_text(site)
        (folder / "nginx.conf").write_text(
            f"{user} daemon off; pid {folder / 'nginx.pid'}; error_log {folder / 'error.log'};\nevents {{}}\n"
            f"http {{ access_log {folder / 'access.log'}; {temp} upstream xray_web {{ {group} }}\n"
            f"include {folder / 'site.conf'}; }}\n"
        )
        self.proc = child([NGINX, "-c", str(folder / "nginx.conf"), "-p", str(folder)])
        wait_until(lambda: self.proc.poll() is not None or self.answers(), 30, "nginx answering")
        if self.proc.poll() is not None:
            raise RuntimeError((folder / "error.log").read_text(errors="replace")[-2000:])

    def answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/nginx-health", timeout=2).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
