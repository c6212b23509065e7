"""The cluster assembled: its shared services made, the schema migrated and the demo clinics created once (as the
migrations Job of deploy/kubernetes), then every node started, each in its own folders, and waited for."""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tools.cluster.nodes import Node, dicom_node, inference_node, maintenance_node, port_open, web_node
from tools.cluster.services import Database, Front, ObjectStore, Redis, wait_until
from xrayweb.launch import free_port, stop

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
PEER = "CLUSTERPACS"  # the DICOM peer (a PACS) the setup registers for the north clinic
USERS = ("north-clinician", "north-reviewer", "north-admin", "river-clinician")
# Run once by the setup node, as the migrations Job would be followed by an admin's first steps.
SETUP = """
import json, sys
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from diagnosis.models import Clinic, DicomPeer
call_command("create_demo_clinics", f"--password={sys.argv[1]}")
north = User.objects.get(username="north-clinician")
DicomPeer.objects.get_or_create(ae_title=sys.argv[2], defaults={"clinic": Clinic.objects.get(slug="north"),
                                "uploader": north})
print(json.dumps({u: Token.objects.get_or_create(user=User.objects.get(username=u))[0].key for u in sys.argv[3:]}))
"""
READY = {"worker": r"model \S+ loaded", "maintenance": r"maintenance@\S+ ready"}


def server_url() -> str:
    """The PostgreSQL server the cluster makes its database on: DATABASE_URL's when it names one, else the local one."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else DEFAULT_SERVER


class Cluster:
    def __init__(self, root: Path, *, workers: int = 2, env: dict[str, str] | None = None) -> None:
        self.root, self.logs = root, root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, float] = {}
        self.password = secrets.token_hex(8)
        self.nodes: dict[str, Node] = {}
        self.db = Database(server_url(), f"xray_cluster_{os.getpid()}")
        self.services: list[Any] = [self.db]
        try:
            self.redis = Redis(self._folder("redis"))
            self.services.append(self.redis)
            self.store = ObjectStore(self.logs / "objectstore.log")
            self.services.append(self.store)
            self.env = {**self._shared(), **(env or {})}
            self._start_all(workers)
        except BaseException:
            self.stop()
            raise

    def _shared(self) -> dict[str, str]:
        """What every node is told: where the three shared services are, one secret key, and short deadlines."""
        return {
            "DATABASE_URL": self.db.url,
            "REDIS_URL": self.redis.url,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            **self.store.env(),
            "API_THROTTLE_RATE": "100000/min",
            "API_SUBMIT_THROTTLE_RATE": "100000/min",
            "SWEEP_INTERVAL": "1",
            "QUEUED_STALE_SECONDS": "5",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def _start_all(self, workers: int) -> None:
        """The workers first (loading the model takes longest) and the web nodes' static files (as their image holds
        them) while the setup node makes the schema; then the rest, and every node waited for."""
        began = time.monotonic()
        for i in range(workers):
            self.nodes[f"worker{i}"] = inference_node(f"worker{i}", self.root, self.env, self.logs).start()
        self.web_ports = [free_port(), free_port()]
        webs = [web_node(f"web{i}", self.root, self.env, self.logs, port) for i, port in enumerate(self.web_ports)]
        statics = [threading.Thread(target=w.manage, args=("collectstatic", "--noinput", "-v", "0")) for w in webs]
        for t in statics:
            t.start()
        self.tokens = self._setup()
        for t in statics:
            t.join()
        self._start(webs)
        self.wait_ready([n for n in self.nodes if n.startswith(("worker", "maintenance"))])
        self._timed("all nodes up, from the first start", began)

    def _folder(self, name: str) -> Path:
        (self.root / name).mkdir(parents=True, exist_ok=True)
        return self.root / name

    def _timed(self, what: str, began: float) -> None:
        self.timings[what] = time.monotonic() - began

    def _setup(self) -> dict[str, str]:
        began = time.monotonic()
        setup = Node("setup", self.root, [], self.env, self.logs)
        setup.manage("migrate", "--noinput", "-v", "0")
        out = setup.run(sys.executable, "-c", f"import django; django.setup()\n{SETUP}", self.password, PEER, *USERS)
        self._timed("migrate and demo clinics (one node)", began)
        return dict(json.loads(out.strip().splitlines()[-1]))

    def _start(self, webs: list[Node]) -> None:
        """The nodes that need the schema: web (behind nginx), maintenance, DICOM listener."""
        began = time.monotonic()
        env, root, logs = self.env, self.root, self.logs
        self.nodes["maintenance"] = maintenance_node("maintenance", root, env, logs).start()
        self.dicom_port = free_port()
        self.nodes["dicom"] = dicom_node("dicom", root, env, logs, self.dicom_port).start()
        for w in webs:
            self.nodes[w.name] = w.start()
        wait_until(lambda: all(self.serves(p) for p in self.web_ports), 120, "both web nodes serving")
        self.front = Front(self._folder("nginx"), self.web_ports)
        self.services.append(self.front)
        self.url = self.front.url
        wait_until(lambda: port_open(self.dicom_port), 60, "the DICOM listener")
        self._timed("web nodes, nginx, maintenance, DICOM listener", began)

    def wait_ready(self, names: list[str], timeout: float = 240) -> float:
        """Seconds until every named worker or maintenance node is ready (a worker: its model loaded)."""
        began = time.monotonic()
        for name in names:
            node = self.nodes[name]
            pattern = READY["maintenance" if name == "maintenance" else "worker"]

            def ready_or_gone(node: Node = node, pattern: str = pattern) -> bool:
                return node.logged(pattern) or not node.alive()

            wait_until(ready_or_gone, timeout, f"{name} ready")
            if not node.alive():
                raise RuntimeError(f"{name} exited:\n{node.log.read_text(errors='replace')[-3000:]}")
        return time.monotonic() - began

    @staticmethod
    def serves(port: int) -> bool:
        """The web node's liveness probe of deploy/kubernetes answers: a static file, Host localhost."""
        try:
            probe = f"http://127.0.0.1:{port}/static/diagnosis/site.js"
            return requests.get(probe, headers={"Host": "localhost"}, timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def restart(self, name: str) -> Node:
        """A node killed by a fault, started afresh (its folders kept, as a machine coming back)."""
        old = self.nodes[name]
        self.nodes[name] = Node(old.name, self.root, old.argv, old.env, self.logs).start()
        return self.nodes[name]

    def stop(self) -> None:
        """Every node at once (SIGTERM to each tree, SIGKILL to what is left after 15 s), then the services."""
        stop([n.proc for n in getattr(self, "nodes", {}).values() if n.proc is not None])
        for service in reversed(self.services):
            service.stop()
