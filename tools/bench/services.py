"""`make bench`: every throughput figure from one run, batched against the per-image path (the baseline).

    python -m tools.bench.services [--quick]

1. What creating a file costs in the run's data folder (api.scratch, beside make run's data), at the start
   and at the end: the disk's condition, which can weigh as much as anything below.
2. The ML package alone, in a child process: batched compiled forward + Grad-CAM (images/s), and the whole
   predict_batch (decode, Grad-CAM, gate, heatmap PNG and overlay JPEG), on real radiographs of the training set;
   measured before and after the services, and the faster of the two is what the service is compared with.
3. The service (make run's launcher, in that folder; timed after a warm-up of WARM_UP studies) with batched
   inference: bulk API studies/s (chunks of 50), page uploads studies/s (one file per request, two at a time, as
   the upload page's script sends them), the p50/p95 upload-to-done latency of a single study on the idle system
   and while another clinic's big batch runs, the inference worker's memory from study 500 to the last, and the
   CPU time each part (web server, worker, broker, this client) spends per bulk study, which bounds studies/s on
   this machine's cores.
4. The same service with INFERENCE_BATCH_SIZE=1 (the per-job path, the baseline): bulk API and page uploads.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from tools.bench.api import BenchError, file_creation_us, scratch, start
from xrayclient import Client, find_images
from xrayweb.launch import READY_FILE
from xrayweb.paths import BASE_DIR

OTHER_CLINIC_USER = "river-clinician"
SLOW_DISK_US = 100  # a new file costs about 20 us of CPU on this machine's disk in its normal state
WARM_UP = 32  # studies judged before anything is timed (the worker loads the model in the background at start)
# Who spends the CPU, by a word of each process's command line (the client is this process).
# "worker" is the Celery worker's whole tree: the pool child that judges, its parent, and the sweeper's beat.
ROLES = {"web": "gunicorn", "worker": "celery", "broker": "redis", "client": "", "other": ""}
ML_CHILD = """
import json, sys, time
from pathlib import Path
import numpy as np
from worker.ml import preprocessing
from worker.ml.inference import Predictor
from worker.ml.spec import ModelSpec
paths, batch = [Path(p) for p in json.loads(sys.argv[1])], int(sys.argv[2])
p = Predictor(ModelSpec.load())
datas = [x.read_bytes() for x in paths]
images = np.stack([preprocessing.model_input(preprocessing.decode(d).gray, p.spec.input_size) for d in datas])
p.gradcam.batch(images[:batch]); p.predict_batch(datas[:batch])
t, cpu = time.perf_counter(), time.process_time()
for i in range(0, len(images), batch):
    p.gradcam.batch(images[i:i + batch])
model = len(images) / (time.perf_counter() - t)
model_cpu_ms = (time.process_time() - cpu) * 1000 / len(images)
t = time.perf_counter()
for i in range(0, len(datas), batch):
    p.predict_batch(datas[i:i + batch])
print(json.dumps({"model": model, "model_cpu_ms": model_cpu_ms, "pipeline": len(datas) / (time.perf_counter() - t)}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.services", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=BASE_DIR.parent / "shared/data/chest_xray/train")
    p.add_argument("--quick", action="store_true", help="fewer studies (about a minute): a smoke run")
    p.add_argument("--batch", type=int, default=32, help="INFERENCE_BATCH_SIZE of the batched run")
    args = p.parse_args(argv)
    sizes = (
        {"n": 100, "page": 40, "ml": 64, "big": 300, "total": 1000, "idle": 8}
        if args.quick
        else {"n": 500, "page": 150, "ml": 256, "big": 1000, "total": 5000, "idle": 20}
    )
    try:
        bench(args.data, args.batch, sizes)
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def bench(data: Path, batch: int, sizes: dict[str, int]) -> None:
    found = find_images(data) if data.exists() else []
    if len(found) < sizes["n"]:
        raise BenchError(f"need {sizes['n']} images under {data}, found {len(found)}")
    paths = found[:: max(1, len(found) // sizes["total"])]
    cpu = f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start"
    print(f"machine: {cpu}; images from {data}", flush=True)
    with scratch() as tmp:  # both services' files stay until the end (api.scratch)
        root = Path(tmp)
        disk = [file_creation_us(root)]
        print(f"data folder {root}: a new file costs {disk[0]:.0f} us of CPU", flush=True)
        if disk[0] > SLOW_DISK_US:
            print(f"warning: over {SLOW_DISK_US} us: the disk is slow to create files now (on ext4 without a journal, "
                  "after many files were deleted nearby, such as by an earlier run); every figure below pays for "
                  "it, so wait a few minutes and run again", flush=True)  # fmt: skip
        ml_runs = [ml_throughput(paths[: sizes["ml"]], batch)]
        first = ml_runs[0]
        print(f"ML package, batch {batch}: model + Grad-CAM {first['model']:.1f} images/s; "
              f"predict_batch (decode .. encoded images) {first['pipeline']:.1f} images/s", flush=True)  # fmt: skip
        batched = run_service(root / "batched", paths, sizes, {"INFERENCE_BATCH_SIZE": str(batch)}, full=True)
        baseline = run_service(root / "per-image", paths, sizes, {"INFERENCE_BATCH_SIZE": "1"}, full=False)
        ml_runs.append(ml_throughput(paths[: sizes["ml"]], batch))  # this machine's speed drifts: measured again
        disk.append(file_creation_us(root))
    report(batch, ml_runs, batched, baseline, sizes=sizes, disk=disk)


def ml_throughput(paths: list[Path], batch: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", ML_CHILD, json.dumps([str(p) for p in paths]), str(batch)],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if out.returncode:
        raise BenchError(f"the ML benchmark failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


class Service:
    def __init__(self, tmp: Path, extra: dict[str, str]) -> None:
        self.tmp = tmp
        self.server, token, self.proc = start(tmp, **extra)
        self.client = Client(self.server, token)
        self.other = Client(self.server, self.token_of(OTHER_CLINIC_USER))
        self.password = json.loads((tmp / READY_FILE).read_text())["password"]

    def token_of(self, user: str) -> str:
        env = {**os.environ, "DJANGO_SECRET_KEY": (self.tmp / "secret_key").read_text(), "XRAY_DATA_DIR": str(self.tmp)}
        env.pop("DATABASE_URL", None)
        env.pop("MEDIA_ROOT", None)
        out = subprocess.run([sys.executable, "manage.py", "drf_create_token", user], cwd=BASE_DIR, env=env,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        found = re.search(r"([0-9a-f]{40})", out)
        if not found:
            raise BenchError(f"no token in: {out}")
        return found.group(1)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(60)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) so far of each part of the service, and of this client, by role."""
        roles: dict[str, float] = dict.fromkeys(ROLES, 0.0)
        procs = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        for p in [*procs, psutil.Process()]:
            try:
                cmd, times = " ".join(p.cmdline()), p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            role = "client" if p.pid == os.getpid() else next((r for r, k in ROLES.items() if k and k in cmd), "other")
            roles[role] += times.user + times.system
        return roles

    def inference_rss_mb(self) -> float:
        """The largest process of the worker's tree (the pool child that holds the model), in MB."""
        tree = psutil.Process(self.proc.pid).children(recursive=True)
        rss = [p.memory_info().rss for p in tree if "celery" in " ".join(p.cmdline())]
        return max(rss, default=0) / 1e6

    def page_session(self) -> requests.Session:
        s = requests.Session()
        s.get(f"{self.server}/accounts/login/")
        r = s.post(f"{self.server}/accounts/login/", data={"username": "north-clinician", "password": self.password,
                   "csrfmiddlewaretoken": s.cookies["csrftoken"]}, headers={"Referer": f"{self.server}/"})  # fmt: skip
        if r.status_code >= 400 or "sessionid" not in s.cookies:
            raise BenchError(f"page login failed: {r.status_code}")
        return s


def run_service(
    folder: Path, paths: list[Path], sizes: dict[str, int], extra: dict[str, str], full: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    folder.mkdir()
    svc = Service(folder, extra)
    try:
        timed_bulk(svc.client, paths[-WARM_UP:])  # the model loaded and compiled: steady state from here
        before = svc.cpu_seconds()
        out["bulk"] = sizes["n"] / timed_bulk(svc.client, paths[: sizes["n"]])
        after = svc.cpu_seconds()
        out["cpu_ms"] = {k: (after[k] - before[k]) * 1000 / sizes["n"] for k in ROLES}
        out["page"] = sizes["page"] / timed_page(svc, paths[sizes["n"] : sizes["n"] + sizes["page"]])
        if full:
            done = sizes["n"] + sizes["page"]
            out["rss"] = [(done, svc.inference_rss_mb())]
            out["idle"] = [single_latency(svc.client, paths[i]) for i in range(sizes["idle"])]
            out["behind"], busy = latency_behind(svc, paths, sizes["big"])
            out["busy_rate"] = busy
            done += sizes["idle"] + sizes["big"] + len(out["behind"])
            out["rss"].append((done, svc.inference_rss_mb()))
            while done < sizes["total"]:
                chunk = [paths[i % len(paths)] for i in range(done, min(sizes["total"], done + 500))]
                timed_bulk(svc.client, chunk)
                done += len(chunk)
                out["rss"].append((done, svc.inference_rss_mb()))
    finally:
        svc.stop()
    return out


def timed_bulk(client: Client, paths: list[Path], chunk: int = 50) -> float:
    began = time.perf_counter()
    submitted = client.submit_all(paths, chunk)
    client.wait(submitted.batches, poll=0.2)
    if submitted.errors:
        raise BenchError(f"{len(submitted.errors)} images were refused: {submitted.errors[:3]}")
    return time.perf_counter() - began


def timed_page(svc: Service, paths: list[Path], senders: int = 2) -> float:
    """One file per request to the upload page, `senders` requests at a time, as its script (upload.js) sends
    them; then until every study is final."""
    sessions = [svc.page_session() for _ in range(senders)]
    todo: queue.SimpleQueue[Path] = queue.SimpleQueue()
    for p in paths:
        todo.put(p)
    ids: list[str] = []
    failed: list[str] = []

    def send(s: requests.Session) -> None:
        while not failed:
            try:
                p = todo.get_nowait()
            except queue.Empty:
                return
            with p.open("rb") as fh:
                r = s.post(f"{svc.server}/upload/", files={"images": (p.name, fh)},
                           headers={"Accept": "application/json", "X-CSRFToken": s.cookies["csrftoken"],
                                    "Referer": f"{svc.server}/upload/"})  # fmt: skip
            if r.status_code != 200:
                failed.append(f"page upload refused: {r.status_code} {r.text[:300]}")
                return
            ids.extend(study["id"] for study in r.json()["studies"])

    began = time.perf_counter()
    threads = [threading.Thread(target=send, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed or len(ids) != len(paths):
        raise BenchError(failed[0] if failed else f"{len(paths) - len(ids)} page uploads got no study")
    for study_id in ids:
        while not sessions[0].get(f"{svc.server}/studies/{study_id}/status/").json()["final"]:
            time.sleep(0.05)
    return time.perf_counter() - began


def single_latency(client: Client, path: Path) -> float:
    """Upload-to-done of one study through the API (one file: interactive), in seconds."""
    began = time.perf_counter()
    batch = client.submit([path])["batch"]
    while client.batch(batch)["progress"] < 1.0:
        time.sleep(0.02)
    return time.perf_counter() - began


def latency_behind(svc: Service, paths: list[Path], big: int) -> tuple[list[float], float]:
    """Clinic B submits `big` studies (chunks of 50) in the background; clinic A meanwhile sends single studies
    one after another. Returns their latencies and clinic B's studies/s."""
    bulk = [paths[(i * 7) % len(paths)] for i in range(big)]
    took: list[float] = []
    thread = threading.Thread(target=lambda: took.append(timed_bulk(svc.other, bulk)))
    thread.start()
    time.sleep(2.0)  # let the backlog build
    latencies: list[float] = []
    while thread.is_alive():
        latencies.append(single_latency(svc.client, paths[len(latencies) % 50]))
        time.sleep(0.2)  # a few samples even when the big batch takes only seconds
    thread.join()
    if not took:
        raise BenchError("the background batch failed (see above)")
    return latencies, big / took[0]


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def report(
    batch: int,
    ml_runs: list[dict[str, float]],
    on: dict[str, Any],
    off: dict[str, Any],
    *,
    sizes: dict[str, int],
    disk: list[float],
) -> None:
    """ml_runs: the ML package measured before and after the services; the faster run is the one compared with
    (the lower ratio: the machine's speed drifts by up to a third within a run, and a slow moment flatters)."""
    ml = max(ml_runs, key=lambda r: r["model"])
    print(f"\n== make bench: {sizes['n']} bulk, {sizes['page']} page uploads; batch {batch} vs per-image ==")
    print(f"disk: a new file cost {disk[0]:.0f} us of CPU at the start, {disk[1]:.0f} us at the end (6 files a study)")
    print(f"{'':34}{'batched':>10}{'per-image':>11}{'ratio':>8}")
    for key, name in (
        ("bulk", "bulk API (chunks of 50), studies/s"),
        ("page", "page uploads (2 at a time), st/s"),
    ):
        print(f"{name:34}{on[key]:10.1f}{off[key]:11.1f}{on[key] / off[key]:7.2f}x")
    runs = " and ".join(f"{r['model']:.1f}" for r in ml_runs)
    print(f"ML package: model + Grad-CAM {ml['model']:.1f} images/s ({ml['model_cpu_ms']:.1f} core-ms each; the "
          f"faster of {runs}, before and after the services), predict_batch {ml['pipeline']:.1f} images/s")  # fmt: skip
    print(f"bulk end to end / model + Grad-CAM: {on['bulk'] / ml['model']:.0%}")
    worker_share = ml["model_cpu_ms"] / on["cpu_ms"]["worker"]
    print(f"the model + Grad-CAM's share of the batched worker's CPU: {worker_share:.0%} (the rest: decoding, "
          "rendering, files, database, broker)")  # fmt: skip
    for name, run in (("batched", on), ("per-image", off)):
        cpu = run["cpu_ms"]
        total = sum(cpu.values())
        parts = ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
        print(f"CPU per bulk study, {name} (core-ms): {parts}; total {total:.1f}: at most "
              f"{(os.cpu_count() or 1) * 1000 / total:.0f} studies/s on {os.cpu_count()} cores")  # fmt: skip
    idle, behind = [x * 1000 for x in on["idle"]], [x * 1000 for x in on["behind"]]
    print(f"single study, idle ({len(idle)}):    p50 {pct(idle, 50):6.0f} ms  p95 {pct(idle, 95):6.0f} ms")
    print(f"single study behind another clinic's {sizes['big']}-image batch ({len(behind)}): "
          f"p50 {pct(behind, 50):6.0f} ms  p95 {pct(behind, 95):6.0f} ms "
          f"(that batch: {on['busy_rate']:.1f} st/s)")  # fmt: skip
    rss = on["rss"]
    print("inference worker RSS: " + ", ".join(f"{n}: {mb:.0f} MB" for n, mb in rss))
    base = min(rss, key=lambda r: abs(r[0] - 500))[1]
    print(f"growth from study ~500 to {rss[-1][0]}: {(rss[-1][1] - base) / base:+.1%}")


if __name__ == "__main__":
    raise SystemExit(main())
