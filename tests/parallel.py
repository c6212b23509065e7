"""The suite in several processes (pytest-xdist: `make test` runs TEST_PROCESSES of them), loaded with `-p` so that it
runs before Django reads its settings.

Each process has a test database of its own (pytest-django names it after the process) and its own temporary
folders; what else the tests empty or restart must be its own too:

- **Redis.** The tests purge the broker's queues and clear the cache. Where REDIS_URL is set, a process takes the
  database of XRAY_TEST_REDIS_URLS (space-separated, one per process: .ci/run claims them) in its place; without
  REDIS_URL each process starts a redis-server of its own when a test needs one (tests/integration/conftest.py).
- **Test ids.** The processes are sent tests by id: items that share one (schemathesis names every API operation's
  test alike) get their own, the item's name after its module, or the run stops (one of them would run, silently).
- **Shared fixtures.** Tests go to the processes a module at a time, so a module's fixtures are made once; the
  cluster suite's modules share one cluster (package-scoped), so they go to one process together.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

URLS = "XRAY_TEST_REDIS_URLS"

# Scopes that take tens of seconds each: sent out first, so that the run does not end waiting on one of them while
# the other processes have nothing left to do. Only the order of work changes; every scope still runs.
SLOW_FIRST: Sequence[str] = (
    "tests/cluster",
    "tests/xrayweb/test_launch",
    "tests/e2e/",
    "tests/faults/",
    "tests/tools/test_bench",
    "tests/worker/ml/test_backends",
    "tests/integration/",
)


def redis_url_of_this_process(environ: dict[str, str] | os._Environ[str]) -> str | None:
    """The REDIS_URL this process must use instead of the given one, or None to keep it."""
    worker = environ.get("PYTEST_XDIST_WORKER", "")
    if not worker or not environ.get("REDIS_URL"):
        return None
    urls = environ.get(URLS, "").split()
    index = int(worker.removeprefix("gw"))
    if index >= len(urls):
        raise pytest.UsageError(
            f"REDIS_URL is set and the suite runs in {environ.get('PYTEST_XDIST_WORKER_COUNT')} processes: set {URLS} "
            f"to one Redis database per process (space-separated; {len(urls)} given), or unset REDIS_URL"
        )
    return urls[index]


if (_own := redis_url_of_this_process(os.environ)) is not None:
    os.environ["REDIS_URL"] = _own


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    give_each_its_own_id(items)


def give_each_its_own_id(items: Sequence[Any]) -> None:
    """Items sharing an id are renamed to their module's id and their own name; a clash left is an error."""
    shared = {nodeid for nodeid, n in Counter(i.nodeid for i in items).items() if n > 1}
    for item in items:
        if item.nodeid in shared:
            _rename(item, f"{item.nodeid.split('::', 1)[0]}::{item.name}")
    if clashes := sorted(nodeid for nodeid, n in Counter(i.nodeid for i in items).items() if n > 1):
        raise pytest.UsageError(f"tests share an id (in several processes only one of each would run): {clashes}")


def _rename(item: Any, nodeid: str) -> None:
    """pytest keeps an item's id in a private attribute: a structured one since pytest 9.2, a string before. Should
    that change again, the clash check above stops the run; nothing is lost silently."""
    if hasattr(item, "_id"):
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(nodeid)
    else:
        item._nodeid = nodeid


def scope_of(nodeid: str) -> str:
    """The unit of work one process takes: the test's module, or the whole cluster suite."""
    if nodeid.startswith("tests/cluster/"):
        return "tests/cluster"
    return nodeid.split("::", 1)[0]


def slow_first(scopes: Sequence[str]) -> list[str]:
    """`scopes` with those named in SLOW_FIRST first (in that order), the rest after in their own order."""

    def rank(scope: str) -> int:
        return next((i for i, prefix in enumerate(SLOW_FIRST) if scope.startswith(prefix)), len(SLOW_FIRST))

    return sorted(scopes, key=rank)


@pytest.hookimpl(optionalhook=True)  # xdist's hook: a run with -p no:xdist has none
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not getattr(self, "_ordered", False):
                self._ordered = True
                queue = self.workqueue
                for scope in slow_first(list(queue)):
                    queue.move_to_end(scope)
            super()._assign_work_unit(node)

    config.option.loadscopereorder = False
    return ModuleScheduling(config, log)
