"""make bench's report of the batched service against the per-image baseline (tools.bench.services): every ratio,
bound and growth computed from what was measured."""

from __future__ import annotations

import os
import statistics
from typing import Any

from tools.bench.runtimes import fastest


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
    ml = fastest(ml_runs)
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
