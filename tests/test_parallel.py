"""tests/parallel.py: in several processes each has a Redis database of its own (read before Django's settings), the
work goes out a module at a time (the cluster suite as one), and the slowest scopes go out first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import parallel

ROOT = Path(__file__).resolve().parents[1]
LIST = "redis://127.0.0.1:6379/3 redis://127.0.0.1:6379/8"


def test_outside_several_processes_redis_url_is_kept() -> None:
    assert parallel.redis_url_of_this_process({"REDIS_URL": "redis://h/1", parallel.URLS: LIST}) is None
    assert parallel.redis_url_of_this_process({"PYTEST_XDIST_WORKER": "gw1", parallel.URLS: LIST}) is None


def test_each_process_takes_its_own_database_of_the_list() -> None:
    env = {"REDIS_URL": "redis://h/1", parallel.URLS: LIST}
    assert parallel.redis_url_of_this_process({**env, "PYTEST_XDIST_WORKER": "gw0"}) == "redis://127.0.0.1:6379/3"
    assert parallel.redis_url_of_this_process({**env, "PYTEST_XDIST_WORKER": "gw1"}) == "redis://127.0.0.1:6379/8"


def test_too_few_databases_for_the_processes_is_an_error_that_says_what_to_set() -> None:
    env = {"REDIS_URL": "redis://h/1", parallel.URLS: LIST, "PYTEST_XDIST_WORKER": "gw2"}
    with pytest.raises(pytest.UsageError, match=f"set {parallel.URLS} to one Redis database per process.*2 given"):
        parallel.redis_url_of_this_process({**env, "PYTEST_XDIST_WORKER_COUNT": "3"})
    with pytest.raises(pytest.UsageError, match="0 given"):
        parallel.redis_url_of_this_process({"REDIS_URL": "redis://h/1", "PYTEST_XDIST_WORKER": "gw0"})


def test_a_module_is_one_unit_of_work_and_the_cluster_suite_is_one() -> None:
    assert parallel.scope_of("tests/diagnosis/test_jobs.py::test_claim[a::b]") == "tests/diagnosis/test_jobs.py"
    assert parallel.scope_of("tests/diagnosis/test_x.py::TestY::test_z") == "tests/diagnosis/test_x.py"
    assert parallel.scope_of("tests/cluster/test_faults.py::test_a") == "tests/cluster"
    assert parallel.scope_of("tests/cluster/test_pacs.py::test_b") == "tests/cluster"


def test_the_slowest_scopes_go_out_first_and_the_rest_keep_their_order() -> None:
    scopes = ["tests/b.py", "tests/e2e/test_x.py", "tests/a.py", "tests/cluster", "tests/xrayweb/test_launch_stop.py"]
    assert parallel.slow_first(scopes) == [
        "tests/cluster",
        "tests/xrayweb/test_launch_stop.py",
        "tests/e2e/test_x.py",
        "tests/b.py",
        "tests/a.py",
    ]


def test_two_processes_read_their_own_database_into_the_settings(tmp_path: Path) -> None:
    """A real run in two processes: each module's test records its process and the broker and cache locations
    Django's settings got (they are read once, when Django starts: the plugin must have run before)."""
    probe = (
        "import json, os\nfrom django.conf import settings\n\n\ndef test_record():\n"
        "    out = os.path.join(os.environ['PROBE_DIR'], os.environ['PYTEST_XDIST_WORKER'] + '-' + __name__)\n"
        "    cache = settings.CACHES['default'].get('LOCATION')\n"
        "    json.dump([settings.CELERY_BROKER_URL, cache], open(out + '.json', 'w'))\n"
    )
    folder = tmp_path / "probes"
    folder.mkdir()
    for name in ("test_probe_one.py", "test_probe_two.py", "test_probe_three.py", "test_probe_four.py"):
        (folder / name).write_text(probe)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}  # this run's own, if any
    env.update({"REDIS_URL": "redis://127.0.0.1:6379/15", parallel.URLS: LIST, "PROBE_DIR": str(tmp_path)})
    argv = [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:randomly", "-p", "no:cacheprovider"]
    argv += ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), str(folder)]  # the project's plugins
    run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    seen = {p.name.split("-")[0]: json.loads(p.read_text()) for p in tmp_path.glob("gw*.json")}
    assert seen == {
        "gw0": ["redis://127.0.0.1:6379/3", "redis://127.0.0.1:6379/3"],
        "gw1": ["redis://127.0.0.1:6379/8", "redis://127.0.0.1:6379/8"],
    }, seen


class _Item:
    def __init__(self, nodeid: str, name: str) -> None:
        self._nodeid, self.name = nodeid, name

    @property
    def nodeid(self) -> str:
        return self._nodeid


def test_tests_that_share_an_id_get_their_own_and_the_rest_keep_theirs() -> None:
    """schemathesis gives every API operation's test one id: sent by id, only one of them ran (9 of 10 lost)."""
    fuzz = "tests/api/test_fuzz.py::test_api"
    items = [_Item(fuzz, "test_api[GET /a/]"), _Item(fuzz, "test_api[POST /a/]"), _Item("tests/t.py::test_b", "test_b")]
    parallel.give_each_its_own_id(items)
    assert [i.nodeid for i in items] == [
        "tests/api/test_fuzz.py::test_api[GET /a/]",
        "tests/api/test_fuzz.py::test_api[POST /a/]",
        "tests/t.py::test_b",
    ]


def test_a_clash_left_after_renaming_stops_the_run() -> None:
    items = [_Item("tests/t.py::test_a", "test_a[x]"), _Item("tests/t.py::test_a", "test_a[x]")]
    with pytest.raises(pytest.UsageError, match=r"share an id .*tests/t.py::test_a\[x\]"):
        parallel.give_each_its_own_id(items)


def test_the_suites_own_tests_each_have_an_id_of_their_own(request: pytest.FixtureRequest) -> None:
    """The API fuzz test's operations among them (the collection this run made)."""
    ids = [item.nodeid for item in request.session.items]
    assert len(ids) == len(set(ids))


def test_a_run_without_xdist_still_loads_the_plugin() -> None:
    """Its scheduler hook is xdist's: without xdist (-p no:xdist) pytest stopped at start ('unknown hook')."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:randomly", "-p", "no:cacheprovider"]
    run = subprocess.run([*argv, "tests/test_needs.py"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and " passed" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
