"""`python -m xrayclient`: runs from a clean checkout with nothing but requests (no Django settings)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xrayclient import cli

ROOT = Path(__file__).resolve().parents[2]


def test_help_runs_without_django() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    code = "import runpy, sys; sys.argv = ['xrayclient', '--help']; runpy.run_module('xrayclient', run_name='__main__')"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "--server" in out.stdout and "--token" in out.stdout
    out = subprocess.run(
        [sys.executable, "-c", "import sys, xrayclient.cli; print(sorted(m for m in sys.modules if 'django' in m))"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"


def test_an_empty_folder_is_refused_before_any_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main([str(tmp_path), "--server", "http://127.0.0.1:9", "--token", "t"])
    assert code == 2 and "no .jpeg, .jpg or .png files" in capsys.readouterr().err


def test_wait_asks_up_to_the_first_unfinished_batch_and_never_again_about_a_finished_one() -> None:
    from typing import Any

    from xrayclient import Client

    class Scripted(Client):
        """Batch "a" is finished after two polls of it, "b" at once, "c" after two polls of it."""

        def __init__(self) -> None:
            super().__init__("http://127.0.0.1:9", "t")
            self.asked: list[str] = []

        def batch(self, batch_id: str) -> dict[str, Any]:
            self.asked.append(batch_id)
            done = batch_id == "b" or self.asked.count(batch_id) >= 2
            return {"progress": 1.0 if done else 0.5, "total": 2}

    client, seen = Scripted(), list[int]()
    client.wait(["a", "b", "c"], poll=0.0, progress=seen.append)
    assert client.asked == ["a", "a", "b", "c", "c"] and sum(seen) == 6
