"""The cluster's one rule: a node keeps nothing on its own disk that another needs. Every file the rows name is an
object in the bucket, and no node's folders (its working folder, MEDIA_ROOT, data folder, home, temporary folder)
hold a file but what its image ships (a web node's static files) and beat's own schedule (the maintenance node's).
A node that wrote an upload, a working copy or a result to its disk, for another to read there, fails this."""

from __future__ import annotations

from tests.cluster.records import Records
from tools.cluster.cluster import Cluster
from tools.cluster.nodes import FOLDERS

OWN = ("data/static/", "data/celerybeat-schedule")


def strays(cluster: Cluster) -> dict[str, list[str]]:
    """Per node (every folder of the cluster laid out as a node's, the setup node's included), its files that are
    not its own."""
    found: dict[str, list[str]] = {}
    for folder in sorted(p for p in cluster.root.iterdir() if all((p / sub).is_dir() for sub in FOLDERS)):
        files = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
        stray = [f for f in files if not f.startswith(OWN)]
        if stray:
            found[folder.name] = stray[:10]
    return found


def assert_isolated(cluster: Cluster, records: Records) -> None:
    assert strays(cluster) == {}
    named, stored = records.stored_names(), cluster.store.keys()
    assert named and named <= stored, sorted(named - stored)[:10]
