"""Bulk studies/s on the cluster (tools.cluster: two web nodes behind nginx, two worker nodes, PostgreSQL, Redis and
an S3 bucket), beside make bench's single node (the launcher on its embedded defaults), in the same run.

    python -m tools.bench.cluster [--n 200] [--chunk 50]

Each service is warmed up (WARM_UP studies) before the N studies are timed, from the first request to the last
study done, through the REST client as a clinic sends them. Where the time goes: the CPU each part spends per study
(web, workers, the object store, nginx, Redis, this database's PostgreSQL backends, this client), and what one
object store call costs, measured beside the runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from tools.bench.api import BenchError, scratch, start, stop
from tools.bench.services import timed_bulk
from tools.cluster.cluster import Cluster
from xrayclient import Client, find_images
from xrayweb.paths import BASE_DIR

WARM_UP = 32
ROLES = ("web", "worker", "maintenance", "object store", "nginx", "redis", "postgres", "client")
Procs = dict[str, list[psutil.Process]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.cluster", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=BASE_DIR.parent / "shared/data/chest_xray/train")
    p.add_argument("--n", type=int, default=200, help="studies timed on each service")
    p.add_argument("--chunk", type=int, default=50, help="studies a request")
    args = p.parse_args(argv)
    found = find_images(args.data) if args.data.exists() else []
    if len(found) < args.n + WARM_UP:
        print(f"need {args.n + WARM_UP} images under {args.data}, found {len(found)}", file=sys.stderr)
        return 1
    paths = found[:: max(1, len(found) // (args.n + WARM_UP))][: args.n + WARM_UP]
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f}; {args.n} studies, chunks of {args.chunk}")
    try:
        with scratch() as tmp:
            single = single_node(Path(tmp) / "single", paths, args.chunk)
            cluster = on_cluster(Path(tmp) / "cluster", paths, args.chunk)
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 1
    report(args.n, single, cluster)
    return 0


def single_node(folder: Path, paths: list[Path], chunk: int) -> dict[str, Any]:
    """make bench's service: one launcher, SQLite and media on this disk, one worker."""
    folder.mkdir(parents=True)
    server, token, proc = start(folder)
    try:
        tree = lambda: {"all": [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]}  # noqa: E731
        return timed(Client(server, token), paths, chunk, lambda: _by_command(tree()["all"]))
    finally:
        stop(proc)


def on_cluster(folder: Path, paths: list[Path], chunk: int) -> dict[str, Any]:
    began = time.monotonic()
    cluster = Cluster(folder, env={"SWEEP_INTERVAL": "30", "QUEUED_STALE_SECONDS": "120"})  # production's sweeper
    started = time.monotonic() - began
    try:
        client = Client(cluster.url, cluster.tokens["north-clinician"])
        calls = cluster.store.calls()
        out = timed(client, paths, chunk, lambda: cluster_processes(cluster))
        out["calls"] = cluster.store.calls() - calls  # warm-up included: divided by all the studies sent
        out["store_ms"] = store_call_ms(cluster)
        out["objects"] = len(cluster.store.keys())
        out["start_s"], out["timings"] = started, dict(cluster.timings)
        return out
    finally:
        cluster.stop()


def timed(client: Client, paths: list[Path], chunk: int, processes: Callable[[], Procs]) -> dict[str, Any]:
    timed_bulk(client, paths[:WARM_UP], chunk)  # models loaded and compiled, connections open
    before = cpu(processes())
    seconds = timed_bulk(client, paths[WARM_UP:], chunk)
    after = cpu(processes())
    n = len(paths) - WARM_UP
    return {"rate": n / seconds, "cpu_ms": {k: (after.get(k, 0) - before.get(k, 0)) * 1000 / n for k in after}}


def _by_command(procs: list[psutil.Process]) -> Procs:
    """A single node's processes by role, from their command lines."""
    keys = {"web": "gunicorn", "worker": "celery", "redis": "redis"}
    roles: Procs = {"client": [psutil.Process()]}
    for p in procs:
        try:
            cmd = " ".join(p.cmdline())
        except psutil.NoSuchProcess:
            continue
        roles.setdefault(next((r for r, k in keys.items() if k in cmd), "other"), []).append(p)
    return roles


def cluster_processes(cluster: Cluster) -> Procs:
    def tree(pid: int) -> list[psutil.Process]:
        return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]

    roles: Procs = {"client": [psutil.Process()]}
    for name, node in cluster.nodes.items():
        if node.proc is not None:
            role = "web" if name.startswith("web") else "worker" if name.startswith("worker") else "maintenance"
            roles.setdefault(role, []).extend(tree(node.proc.pid))
    roles["object store"] = tree(cluster.store.proc.pid)
    roles["nginx"] = tree(cluster.front.proc.pid)
    roles["redis"] = tree(cluster.redis.proc.pid)
    roles["postgres"] = [
        p for p in psutil.process_iter(["cmdline"]) if cluster.db.name in " ".join(p.info["cmdline"] or [])
    ]
    return roles


def cpu(roles: Procs) -> dict[str, float]:
    """CPU seconds (user + system) so far, by role (a process gone meanwhile counts for nothing)."""
    out: dict[str, float] = {}
    for role, procs in roles.items():
        for p in procs:
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            out[role] = out.get(role, 0.0) + t.user + t.system
    return out


def store_call_ms(cluster: Cluster, n: int = 20) -> dict[str, float]:
    """Milliseconds a PUT and a GET of a 100 KB object take on the cluster's object store, from here."""
    s3, body = cluster.store.client(), os.urandom(100_000)
    took: dict[str, float] = {}
    for verb, call in (
        ("PUT", lambda i: s3.put_object(Bucket=cluster.store.BUCKET, Key=f"bench/{i}", Body=body)),
        ("GET", lambda i: s3.get_object(Bucket=cluster.store.BUCKET, Key=f"bench/{i}")["Body"].read()),
    ):
        began = time.perf_counter()
        for i in range(n):
            call(i)
        took[verb] = (time.perf_counter() - began) * 1000 / n
    return took


def report(n: int, single: dict[str, Any], cluster: dict[str, Any]) -> None:
    print(f"\n== cluster bench: {n} bulk studies ==")
    print(f"{'':44}{'single node':>12}{'cluster':>10}")
    print(f"{'bulk API studies/s':44}{single['rate']:12.1f}{cluster['rate']:10.1f}")
    one, many = single["cpu_ms"], cluster["cpu_ms"]
    for role in sorted({*one, *many}, key=lambda r: ROLES.index(r) if r in ROLES else len(ROLES)):
        print(f"{'CPU per study, ' + role + ' (core-ms)':44}{one.get(role, 0.0):12.1f}{many.get(role, 0.0):10.1f}")
    print(f"{'CPU per study, total (core-ms)':44}{sum(one.values()):12.1f}{sum(many.values()):10.1f}")
    store, calls = cluster["store_ms"], cluster["calls"]
    sent = n + WARM_UP
    per = ", ".join(f"{verb} {count / sent:.1f}" for verb, count in sorted(calls.items()))
    print(f"object store calls per study: {sum(calls.values()) / sent:.1f} ({per}); {cluster['objects']} objects")
    print(f"one call from here: a 100 KB PUT {store['PUT']:.1f} ms, GET {store['GET']:.1f} ms (moto, on these cores)")
    timings = cluster["timings"]
    assert isinstance(timings, dict)
    print(
        f"cluster start {cluster['start_s']:.0f} s (" + "; ".join(f"{k}: {v:.0f} s" for k, v in timings.items()) + ")"
    )


if __name__ == "__main__":
    raise SystemExit(main())
