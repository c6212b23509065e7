"""make bench's report (the figures themselves come from a 2-minute run on real services; see the README): the
printed ratios, bounds and growth are computed from what was measured, never written in."""

import pytest

from tools.bench import api, figures, runtimes, services


def test_the_report_derives_its_ratios_bounds_and_growth(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setattr(figures.os, "cpu_count", lambda: 2)
    cpu = {"web": 5.0, "worker": 14.0, "broker": 0.5, "client": 0.5, "other": 0.0}
    on = {
        "bulk": 80.0,
        "page": 40.0,
        "cpu_ms": cpu,
        "idle": [0.05, 0.06, 0.07],
        "behind": [0.5, 1.0],
        "busy_rate": 70.0,
        "rss": [(650, 1000.0), (5000, 1030.0)],
    }
    off = {"bulk": 20.0, "page": 20.0, "cpu_ms": {**cpu, "worker": 30.0}}
    services.report(
        32,
        [
            {"model": 150.0, "model_cpu_ms": 9.0, "pipeline": 120.0},
            {"model": 200.0, "model_cpu_ms": 7.0, "pipeline": 150.0},
        ],
        on,
        off,
        sizes={"n": 500, "page": 150, "big": 1000},
        disk=[21.4, 733.0],
    )
    out = capsys.readouterr().out
    assert "bulk API (chunks of 50), studies/s      80.0       20.0   4.00x" in out
    assert "bulk end to end / model + Grad-CAM: 40%" in out  # against the faster ML run, not the 150 images/s one
    assert "7.0 core-ms each; the faster of 150.0 and 200.0" in out
    assert "share of the batched worker's CPU: 50%" in out
    assert "total 20.0: at most 100 studies/s on 2 cores" in out and "total 36.0: at most 56 studies/s" in out
    assert "growth from study ~500 to 5000: +3.0%" in out
    assert "a new file cost 21 us of CPU at the start, 733 us at the end" in out


def test_the_disk_probe_times_new_files_in_the_folder_it_is_given(tmp_path) -> None:
    assert api.file_creation_us(tmp_path, n=20) > 0
    (probe,) = tmp_path.iterdir()
    assert len(list(probe.iterdir())) == 20


def test_percentiles_of_one_value_and_of_many() -> None:
    assert services.pct([3.0], 95) == 3.0
    assert services.pct([float(v) for v in range(1, 101)], 50) == pytest.approx(50.5)


def test_the_runtimes_report_puts_both_side_by_side_with_their_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    ml = {
        "litert": [{"model": 300.0, "model_cpu_ms": 6.0, "pipeline": 200.0}, {"model": 400.0, "model_cpu_ms": 5.0,
                   "pipeline": 250.0}],
        "tensorflow": [{"model": 90.0, "model_cpu_ms": 22.0, "pipeline": 70.0}],
    }  # fmt: skip
    service = {
        "litert": {"bulk": 100.0, "idle": [0.05, 0.06, 0.1], "rss": [(532, 400.0)], "first": 2.5},
        "tensorflow": {"bulk": 50.0, "idle": [0.1, 0.12, 0.2], "rss": [(532, 1000.0)], "first": 12.5},
    }
    runtimes.report(ml, service, services.pct)
    out = capsys.readouterr().out
    assert "litert  tensorflow    ratio" in out
    assert "model + Grad-CAM, core-ms an image                 5.0        22.0    0.23x" in out  # the faster run
    assert "bulk API (chunks of 50), studies/s               100.0        50.0    2.00x" in out
    assert "inference worker RSS after ~500 studies, MB        400        1000    0.40x" in out
    assert "launcher's banner to the first result, s          2.50       12.50    0.20x" in out
    assert "single study, idle, p50 ms                          60         120    0.50x" in out
    assert "model + Grad-CAM on litert: 23% of tensorflow's CPU an image" in out
