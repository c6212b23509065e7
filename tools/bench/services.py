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
5. The two runtimes (tools.bench.runtimes): 2 and 3 run on LiteRT (INFERENCE_RUNTIME's default); the ML package and
   a batched service are measured on TensorFlow too (bulk, idle latency, worker RSS), and every service's time from
   the launcher's banner to its first study's result (one radiograph uploaded on the page as soon as the banner is
   out). --runtimes runs only this comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from tools.bench import runtimes
from tools.bench.api import BenchError, create_token, file_creation_us, launch, scratch, stop
from tools.bench.figures import pct, report
from tools.bench.runtimes import RUNTIMES, ml_throughput
from xrayclient import Client, find_images
from xrayweb.launch import READY_FILE
from xrayweb.paths import BASE_DIR

OTHER_CLINIC_USER = "river-clinician"
SLOW_DISK_US = 100  # a new file costs about 20 us of CPU on this machine's disk in its normal state
WARM_UP = 32  # studies judged before anything is timed (the worker loads the model in the background at start)
# Who spends the CPU, by a word of each process's command line (the client is this process).
# "worker" is the Celery worker's whole tree: the pool child that judges, its parent, and the sweeper's beat.
ROLES = {"web": "gunicorn", "worker": "celery", "broker": "redis", "client": "", "other": ""}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.services", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=BASE_DIR.parent / "shared/data/chest_xray/train")
    p.add_argument("--quick", action="store_true", help="fewer studies (about a minute): a smoke run")
    p.add_argument("--batch", type=int, default=32, help="INFERENCE_BATCH_SIZE of the batched run")
    p.add_argument("--runtimes", action="store_true", help="only the runtimes' comparison (5 above)")
    args = p.parse_args(argv)
    sizes = (
        {"n": 100, "page": 40, "ml": 64, "big": 300, "total": 1000, "idle": 8}
        if args.quick
        else {"n": 500, "page": 150, "ml": 256, "big": 1000, "total": 5000, "idle": 20}
    )
    try:
        bench(args.data, args.batch, sizes, only_runtimes=args.runtimes)
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def bench(data: Path, batch: int, sizes: dict[str, int], only_runtimes: bool = False) -> None:
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
        ml_runs = {rt: [ml_throughput(paths[: sizes["ml"]], batch, rt)] for rt in RUNTIMES}
        for rt, (first,) in ml_runs.items():
            print(f"ML package on {rt}, batch {batch}: model + Grad-CAM {first['model']:.1f} images/s "
                  f"({first['model_cpu_ms']:.1f} core-ms each); predict_batch {first['pipeline']:.1f} images/s",
                  flush=True)  # fmt: skip
        on = {rt: {"INFERENCE_BATCH_SIZE": str(batch), "INFERENCE_RUNTIME": rt} for rt in RUNTIMES}
        mode = "runtime" if only_runtimes else "full"
        batched = {RUNTIMES[0]: run_service(root / "batched", paths, sizes, on[RUNTIMES[0]], mode)}
        for rt in RUNTIMES[1:]:
            batched[rt] = run_service(root / f"batched-{rt}", paths, sizes, on[rt], "runtime")
        if not only_runtimes:
            baseline = run_service(root / "per-image", paths, sizes, {"INFERENCE_BATCH_SIZE": "1"}, "baseline")
        for rt in RUNTIMES:  # this machine's speed drifts: measured again
            ml_runs[rt].append(ml_throughput(paths[: sizes["ml"]], batch, rt))
        disk.append(file_creation_us(root))
    if not only_runtimes:
        report(batch, ml_runs[RUNTIMES[0]], batched[RUNTIMES[0]], baseline, sizes=sizes, disk=disk)
    runtimes.report(ml_runs, batched, pct)


class Service:
    """make run's launcher in `tmp` (env: `extra`). first: a radiograph uploaded on the page as soon as the
    launcher's banner is out, to time its result from the banner (first_result_s); then the API's token."""

    def __init__(self, tmp: Path, extra: dict[str, str], first: Path | None = None) -> None:
        self.tmp = tmp
        self.server, env, log, self.proc = launch(tmp, **extra)
        try:
            ready = tmp / READY_FILE
            banner_at = ready.stat().st_mtime  # written just before the banner is printed
            self.password = json.loads(ready.read_text())["password"]
            self.first_result_s = first_result(self, first, banner_at) if first else float("nan")
            self.client = Client(self.server, create_token(tmp, env, log))
            self.other = Client(self.server, self.token_of(OTHER_CLINIC_USER))
        except BaseException:
            stop(self.proc)
            raise

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
        stop(self.proc)

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
    folder: Path, paths: list[Path], sizes: dict[str, int], extra: dict[str, str], mode: str
) -> dict[str, Any]:
    """mode: "full" (every figure), "runtime" (bulk, idle latencies, the worker's RSS: for comparing runtimes) or
    "baseline" (bulk and page uploads); each also the banner-to-first-result time."""
    folder.mkdir()
    svc = Service(folder, extra, first=paths[-WARM_UP - 1])
    out: dict[str, Any] = {"first": svc.first_result_s}
    try:
        timed_bulk(svc.client, paths[-WARM_UP:])  # the model loaded and compiled: steady state from here
        before = svc.cpu_seconds()
        out["bulk"] = sizes["n"] / timed_bulk(svc.client, paths[: sizes["n"]])
        after = svc.cpu_seconds()
        out["cpu_ms"] = {k: (after[k] - before[k]) * 1000 / sizes["n"] for k in ROLES}
        if mode != "runtime":
            out["page"] = sizes["page"] / timed_page(svc, paths[sizes["n"] : sizes["n"] + sizes["page"]])
        if mode != "baseline":
            out["rss"] = [(sizes["n"] + WARM_UP, svc.inference_rss_mb())]
            out["idle"] = [single_latency(svc.client, paths[i]) for i in range(sizes["idle"])]
        if mode == "full":
            out.update(long_run(svc, paths, sizes))
    finally:
        svc.stop()
    return out


def long_run(svc: Service, paths: list[Path], sizes: dict[str, int]) -> dict[str, Any]:
    """Latency behind another clinic's big batch, then bulk up to sizes["total"] studies, the worker's RSS after
    each 500."""
    done = sizes["n"] + sizes["page"] + sizes["idle"]
    out: dict[str, Any] = {"rss": [(done, svc.inference_rss_mb())]}
    out["behind"], out["busy_rate"] = latency_behind(svc, paths, sizes["big"])
    done += sizes["big"] + len(out["behind"])
    out["rss"].append((done, svc.inference_rss_mb()))
    while done < sizes["total"]:
        chunk = [paths[i % len(paths)] for i in range(done, min(sizes["total"], done + 500))]
        timed_bulk(svc.client, chunk)
        done += len(chunk)
        out["rss"].append((done, svc.inference_rss_mb()))
    return out


def first_result(svc: Service, path: Path, since: float) -> float:
    """Seconds from `since` (time.time()) until a study uploaded on the page now is final: the first study after a
    start waits for the worker to import its code and load the model."""
    session = svc.page_session()
    (study_id,) = page_upload(svc, session, path)
    while not session.get(f"{svc.server}/studies/{study_id}/status/").json()["final"]:
        time.sleep(0.02)
    return time.time() - since


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
            try:
                ids.extend(page_upload(svc, s, p))
            except BenchError as exc:
                failed.append(str(exc))
                return

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


def page_upload(svc: Service, session: requests.Session, path: Path) -> list[str]:
    """One file to the upload page, as its script sends it: the ids of the studies made."""
    with path.open("rb") as fh:
        r = session.post(f"{svc.server}/upload/", files={"images": (path.name, fh)},
                         headers={"Accept": "application/json", "X-CSRFToken": session.cookies["csrftoken"],
                                  "Referer": f"{svc.server}/upload/"})  # fmt: skip
    if r.status_code != 200:
        raise BenchError(f"page upload refused: {r.status_code} {r.text[:300]}")
    return [study["id"] for study in r.json()["studies"]]


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


if __name__ == "__main__":
    raise SystemExit(main())
