"""One cluster (tools.cluster) for the whole suite: started once, shared by its modules in order, stopped after the
last. A test that breaks a node or a service (tests/cluster/test_faults.py) restores it before it ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.cluster.records import Records
from tests.images import SHARED_DATA
from tests.needs import need
from tools.cluster.cluster import Cluster, server_url
from tools.cluster.services import NGINX


def _missing() -> str:
    if not Path(NGINX).exists():
        return "nginx is not installed (apt-get install nginx; .ci/run does)"
    if not (SHARED_DATA / "train").is_dir():
        return f"the training radiographs are not at {SHARED_DATA}"
    try:
        psycopg.connect(server_url().rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"no PostgreSQL server answers at {server_url()} (set DATABASE_URL): {exc}"
    return ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked after_its_module (the isolation checks: "after the faults, no node kept a file") runs after its
    module's other tests, whatever order pytest-randomly chose (its hook reorders before this one): run first, it
    found no stored file at all and failed, or checked nothing of its module's work."""
    for item in [i for i in items if i.get_closest_marker("after_its_module")]:
        where = items.index(item)
        items.remove(item)
        last = max((k for k, other in enumerate(items) if other.path == item.path), default=where - 1)
        items.insert(last + 1, item)  # alone of its module, it stays where it was


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    missing = _missing()
    need(not missing, missing)  # skipped with the reason; a failure where XRAY_REQUIRE_ALL is set (CI)
    # Batches of 8 (4 studies a message): a few dozen studies spread over both workers.
    started = Cluster(tmp_path_factory.mktemp("cluster"), env={"INFERENCE_BATCH_SIZE": "8"})
    try:
        print("\n" + "; ".join(f"{what}: {s:.1f} s" for what, s in started.timings.items()))
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="package")
def records(cluster: Cluster) -> Records:
    return Records(cluster.db.url)
