"""The cluster bench's report (its figures come from a run on real nodes; see README, Running on several machines):
totals and per-study calls are computed from what was measured, never written in."""

from collections import Counter

import pytest

from tools.bench import cluster


def test_the_report_sums_each_sides_cpu_and_divides_the_calls_by_every_study_sent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    single = {"rate": 30.0, "cpu_ms": {"web": 8.0, "worker": 12.0, "client": 0.5}}
    many = {
        "rate": 3.0,
        "cpu_ms": {"web": 90.0, "worker": 95.0, "object store": 110.0, "client": 0.5},
        "calls": Counter({"PUT": 6 * 42, "GET": 2 * 42, "HEAD": 4 * 42}),
        "store_ms": {"PUT": 17.0, "GET": 25.0},
        "objects": 252,
        "start_s": 59.0,
        "timings": {"migrate": 41.0},
    }
    cluster.report(42 - cluster.WARM_UP, single, many)
    out = capsys.readouterr().out
    assert "bulk API studies/s                                  30.0       3.0" in out
    assert "CPU per study, total (core-ms)                      20.5     295.5" in out
    assert "object store calls per study: 12.0 (GET 2.0, HEAD 4.0, PUT 6.0); 252 objects" in out
    assert out.index("web (core-ms)") < out.index("worker (core-ms)") < out.index("object store (core-ms)")
