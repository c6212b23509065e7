"""Reading deploy/kubernetes without kubectl: each file's resources, each kustomization's resources (folders
followed), and what a pod's container runs with (its command, its environment from the ConfigMap and its own)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = "kustomization.yaml"
POD_KINDS = ("Deployment", "Job")
Doc = dict[str, Any]


def resource_files() -> list[Path]:
    """Every YAML file under deploy/kubernetes that holds resources (not a kustomization)."""
    return sorted(p for p in KUBE.rglob("*.yaml") if p.name != KUSTOMIZATION)


def kustomizations() -> list[Path]:
    return sorted(KUBE.rglob(KUSTOMIZATION))


def documents(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def rendered(folder: Path) -> list[Doc]:
    """The resources a kustomization folder names, its bases' included (no transformers applied)."""
    spec = yaml.safe_load((folder / KUSTOMIZATION).read_text())
    docs: list[Doc] = []
    for entry in spec.get("resources", []):
        target = (folder / entry).resolve()
        docs += rendered(target) if target.is_dir() else documents(target)
    return docs


def overlays() -> list[Path]:
    return sorted(p for p in (KUBE / "overlays").iterdir() if (p / KUSTOMIZATION).exists())


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def containers(doc: Doc, init: bool = True) -> list[Doc]:
    spec = pod_spec(doc)
    return [*(spec.get("initContainers", []) if init else []), *spec["containers"]]


def main_container(doc: Doc) -> Doc:
    only: list[Doc] = pod_spec(doc)["containers"]
    assert len(only) == 1, doc["metadata"]["name"]
    return only[0]


def environment(container: Doc, docs: list[Doc]) -> dict[str, str]:
    """The variables the container gets from ConfigMaps of `docs` (envFrom) and its own env, later ones winning."""
    maps = by_kind(docs, "ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(maps[source["configMapRef"]["name"]]["data"])
    env.update({e["name"]: str(e.get("value", "")) for e in container.get("env", [])})
    return env


def variables_set(container: Doc, docs: list[Doc]) -> Iterator[str]:
    """Every variable name the container is given: its ConfigMaps' keys, its Secrets' keys (from the example
    Secret that documents them) and its own env."""
    secrets = by_kind(documents(KUBE / "secrets.example.yaml"), "Secret")
    yield from environment(container, docs)
    for source in container.get("envFrom", []):
        if "secretRef" in source:
            yield from secrets[source["secretRef"]["name"]]["stringData"]


def queues(command: list[str]) -> set[str]:
    """The queues a `celery worker` command consumes (-Q a,b)."""
    assert "worker" in command, command
    return set(command[command.index("-Q") + 1].split(","))


def task_limits(env: dict[str, str]) -> dict[str, int]:
    """INFERENCE_TASK_TIME_LIMIT and RUNNING_STALE_SECONDS as xrayweb/conf/tasks.py computes them for a process
    with this environment (a fresh copy of the module, run under it; the loaded settings are left alone)."""
    path = ROOT / "xrayweb" / "conf" / "tasks.py"
    spec = importlib.util.spec_from_file_location("_tasks_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INFERENCE_", "RUNNING_STALE"))}
    with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
        spec.loader.exec_module(module)
    return {"hard": module.INFERENCE_TASK_TIME_LIMIT, "stale": module.RUNNING_STALE_SECONDS}


def option(command: list[str], name: str) -> str:
    """The value of `--name=value` in a command line."""
    found = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}=")]
    assert len(found) == 1, (name, command)
    return found[0]
