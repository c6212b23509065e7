"""deploy/kubernetes, checked offline: every resource against Kubernetes' own schemas (kubernetes-validate, strict:
no unknown field), KEDA's resources (a CRD those schemas do not know) field by field, and what ties the manifests
to the code: the settings the pods set, the queue KEDA measures, the paths the probes ask for, the time a stopping
worker is given against its task's time limit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import redis
from celery import Celery
from django.conf import settings
from django.contrib.staticfiles import finders
from django.urls import resolve

from diagnosis.pipeline import SOFT_LIMIT_MARGIN_SECONDS
from diagnosis.task_names import INFERENCE_QUEUE, MAINTENANCE_QUEUE, RUN_INFERENCE
from tests.deploy.manifests import (
    KUBE,
    KUSTOMIZATION,
    ROOT,
    Doc,
    by_kind,
    containers,
    documents,
    environment,
    kustomizations,
    main_container,
    option,
    overlays,
    pod_spec,
    queues,
    rendered,
    resource_files,
    task_limits,
    variables_set,
)
from tests.test_settings import readme_table, settings_source, variables_read

# The oldest Kubernetes still supported upstream when this was written, and the newest kubernetes-validate knows.
VERSIONS = ("1.33.0", kubernetes_validate.latest_version())
# Read by a library inside the pod, not by the settings (each named with its reason in the manifest).
NOT_SETTINGS = {"XLA_PYTHON_CLIENT_PREALLOCATE"}
CLUSTER_AUTOSCALER_MAX_GRACE = 600  # its --max-graceful-termination-sec default: a longer grace is cut there


def all_docs() -> list[Doc]:
    """Every resource of every overlay (an overlay includes the base), each once."""
    seen: dict[tuple[str, str], Doc] = {}
    for folder in overlays():
        for doc in rendered(folder):
            seen[(doc["kind"], doc["metadata"]["name"])] = doc
    return list(seen.values())


def workloads() -> dict[str, Doc]:
    return {**by_kind(all_docs(), "Deployment"), **by_kind(all_docs(), "Job")}


def inference_workers() -> dict[str, Doc]:
    return {
        name: d
        for name, d in by_kind(all_docs(), "Deployment").items()
        if "celery" in main_container(d)["command"] and INFERENCE_QUEUE in queues(main_container(d)["command"])
    }


def test_each_kustomization_lists_every_file_of_its_folder_and_only_files_that_exist() -> None:
    assert {p.parent.name for p in kustomizations()} == {"base", "cpu", "gpu"}
    for path in kustomizations():
        listed = yaml_resources(path)
        for entry in listed:
            target = path.parent / entry
            assert target.is_file() or (target / KUSTOMIZATION).is_file(), f"{path}: {entry} does not exist"
        here = {p.name for p in path.parent.glob("*.yaml")} - {KUSTOMIZATION}
        assert here <= set(listed), f"{path} leaves out {here - set(listed)}"
    assert set(resource_files()) - {KUBE / "secrets.example.yaml"} == {
        (folder / name).resolve() for folder in overlays() for name in _files_under(folder)
    }


def yaml_resources(path: Path) -> list[str]:
    import yaml

    return list(yaml.safe_load(path.read_text()).get("resources", []))


def _files_under(folder: Path) -> set[str]:
    """Paths (relative to `folder`) of every resource file a kustomization reaches."""
    found: set[str] = set()
    for entry in yaml_resources(folder / KUSTOMIZATION):
        target = (folder / entry).resolve()
        found |= {str(Path(entry) / f) for f in _files_under(target)} if target.is_dir() else {entry}
    return found


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", resource_files(), ids=lambda p: str(p.relative_to(KUBE)))
def test_every_resource_validates_against_kubernetes_schemas(path: Path, version: str) -> None:
    docs = [d for d in documents(path) if not d["apiVersion"].startswith("keda.sh/")]
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    assert docs or "ScaledObject" in path.read_text()


def test_keda_scaled_objects_have_what_keda_requires() -> None:
    docs = all_docs()
    auths = by_kind(docs, "TriggerAuthentication")
    secrets = by_kind(documents(KUBE / "secrets.example.yaml"), "Secret")
    for auth in auths.values():
        assert auth["apiVersion"] == "keda.sh/v1alpha1"
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["parameter"] in {"address", "host", "port", "username", "password"}
            assert ref["key"] in secrets[ref["name"]]["stringData"]
    scaled = by_kind(docs, "ScaledObject")
    assert set(scaled) == {"xray-worker-cpu", "xray-worker-gpu"}
    for name, obj in scaled.items():
        spec = obj["spec"]
        assert obj["apiVersion"] == "keda.sh/v1alpha1" and spec["scaleTargetRef"]["name"] == name
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["fallback"]["failureThreshold"] > 0
        assert spec["minReplicaCount"] <= spec["fallback"]["replicas"] <= spec["maxReplicaCount"]
        assert spec["pollingInterval"] > 0 and spec["cooldownPeriod"] > 0
        [trigger] = spec["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "redis" and trigger["authenticationRef"]["name"] in auths
        for key in ("listLength", "activationListLength", "databaseIndex"):
            assert isinstance(meta[key], str) and meta[key].isdigit(), key  # KEDA takes strings only
        assert int(meta["listLength"]) > 0
        assert "replicas" not in obj and "replicas" not in workloads()[name]["spec"]  # KEDA owns the count
    gpu = scaled["xray-worker-gpu"]["spec"]
    assert gpu["minReplicaCount"] == 0 and int(gpu["triggers"][0]["metadata"]["activationListLength"]) > 0
    assert scaled["xray-worker-cpu"]["spec"]["minReplicaCount"] >= 1  # one warm worker for interactive studies


def test_keda_measures_the_queue_the_workers_it_scales_consume() -> None:
    workers = inference_workers()
    for obj in by_kind(all_docs(), "ScaledObject").values():
        meta = obj["spec"]["triggers"][0]["metadata"]
        assert meta["listName"] == INFERENCE_QUEUE
        assert obj["spec"]["scaleTargetRef"]["name"] in workers
        url = by_kind(documents(KUBE / "secrets.example.yaml"), "Secret")["xray-secrets"]["stringData"]["REDIS_URL"]
        assert url.rsplit("/", 1)[1] == meta["databaseIndex"]


def test_the_list_keda_reads_is_where_celery_puts_an_inference_message(tmp_path: Path) -> None:
    """A message sent as the web sends one (the project's routes and transport) lands in Redis' list `listName`."""
    from xrayweb.launch import start_embedded_redis

    proc, url = start_embedded_redis(tmp_path)
    try:
        app = Celery("keda-check", set_as_current=False)  # the project's app stays current_app for later tests
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.conf.update(broker_url=url)
        app.send_task(RUN_INFERENCE, args=[1, 2])
        names = {o["spec"]["triggers"][0]["metadata"]["listName"] for o in by_kind(all_docs(), "ScaledObject").values()}
        assert {name: redis.Redis.from_url(url).llen(name) for name in names} == {INFERENCE_QUEUE: 1}
    finally:
        proc.kill()
        proc.wait(10)


def test_every_variable_a_pod_is_given_is_a_setting_of_the_readme_table() -> None:
    table, read = readme_table(), variables_read(settings_source())
    given = {name for d in workloads().values() for c in containers(d) for name in variables_set(c, all_docs())}
    assert {"DATABASE_URL", "REDIS_URL", "S3_BUCKET", "DJANGO_SECRET_KEY", "INFERENCE_BATCH_SIZE"} <= given
    assert given - NOT_SETTINGS <= read & table
    assert not {"DJANGO_DEBUG", "DJANGO_INSECURE_DEV_KEY"} & given
    assert by_kind(all_docs(), "ConfigMap")["xray-config"]["data"]["S3_BUCKET"]  # no node keeps files on its disk


def test_probes_ask_for_what_the_app_serves_on_the_port_it_listens_on() -> None:
    docs = all_docs()
    web = main_container(workloads()["xray-web"])
    port = int(option(web["command"], "bind").rsplit(":", 1)[1])
    assert web["ports"] == [{"name": "http", "containerPort": port}]
    allowed = environment(web, docs)["DJANGO_ALLOWED_HOSTS"].split(",")
    ready, alive = web["readinessProbe"]["httpGet"], web["livenessProbe"]["httpGet"]
    resolve(ready["path"])  # a view of the URLconf (raises Resolver404 otherwise)
    static = "/" + settings.STATIC_URL.lstrip("/")
    assert alive["path"].startswith(static) and finders.find(alive["path"].removeprefix(static))  # collectstatic's
    for probe in (ready, alive):
        headers = {h["name"]: h["value"] for h in probe["httpHeaders"]}
        assert probe["port"] == "http" and headers["Host"] in allowed and headers["X-Forwarded-Proto"] == "https"
    dicom = main_container(workloads()["xray-dicom"])
    listen = int(dicom["command"][dicom["command"].index("--port") + 1])
    assert dicom["ports"] == [{"name": "dicom", "containerPort": listen}]
    assert dicom["livenessProbe"]["tcpSocket"]["port"] == dicom["readinessProbe"]["tcpSocket"]["port"] == "dicom"
    for name in [*inference_workers(), "xray-maintenance"]:
        c = main_container(workloads()[name])
        assert "-n" not in c["command"]  # the node is celery@<pod name>, the name the probe pings
        assert c["livenessProbe"]["exec"]["command"][-1].endswith("inspect ping --timeout 10 -d celery@$HOSTNAME")


def test_a_stopping_worker_is_given_its_tasks_whole_time_limit() -> None:
    """Kubernetes SIGTERMs Celery's main process, whose warm shutdown waits for the task in hand: the grace period
    must outlast that task's hard limit (and so its soft limit), or the batch is killed and waits for the sweeper."""
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    for name, doc in inference_workers().items():
        limits = task_limits(environment(main_container(doc), all_docs()))
        grace = pod_spec(doc)["terminationGracePeriodSeconds"]
        assert limits["hard"] - SOFT_LIMIT_MARGIN_SECONDS < limits["hard"] <= grace, name
        assert grace <= CLUSTER_AUTOSCALER_MAX_GRACE, name
        assert "lifecycle" not in main_container(doc), name  # nothing before Celery's own shutdown


def test_a_stopping_web_pod_finishes_its_requests_after_the_ingress_stops_sending() -> None:
    doc = workloads()["xray-web"]
    web = main_container(doc)
    sleep = int(web["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod_spec(doc)["terminationGracePeriodSeconds"] >= sleep + int(option(web["command"], "graceful-timeout"))


def test_the_maintenance_worker_is_one_beat_that_waits_for_the_largest_batch() -> None:
    doc = workloads()["xray-maintenance"]
    c = main_container(doc)
    assert doc["spec"]["replicas"] == 1 and doc["spec"]["strategy"]["type"] == "Recreate"
    assert "-B" in c["command"] and queues(c["command"]) == {MAINTENANCE_QUEUE}
    assert all("-B" not in main_container(d)["command"] for d in inference_workers().values())
    stale = task_limits(environment(c, all_docs()))["stale"]
    for name, worker in inference_workers().items():
        assert stale >= task_limits(environment(main_container(worker), all_docs()))["hard"] + 60, name


def test_gpu_workers_ask_for_a_gpu_on_a_gpu_node_with_the_gpu_image() -> None:
    gpu = workloads()["xray-worker-gpu"]
    spec = pod_spec(gpu)
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert main_container(gpu)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {c["image"] for c in containers(gpu)} == {"xray-gpu"}
    assert all("nvidia.com/gpu" not in str(c) for c in containers(workloads()["xray-worker-cpu"]))


def test_the_ingress_reads_bodies_whole_up_to_nginx_confs_limit_and_reaches_the_web_service() -> None:
    docs = all_docs()
    ingress = by_kind(docs, "Ingress")["xray"]
    notes = ingress["metadata"]["annotations"]
    limit = re.search(r"client_max_body_size (\w+);", (ROOT / "deploy" / "nginx.conf").read_text())
    assert limit and notes["nginx.ingress.kubernetes.io/proxy-body-size"] == limit.group(1) == "2g"
    assert settings.MAX_REQUEST_BYTES == 2 * 1024**3
    assert notes["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] in by_kind(docs, "Service")


def test_pods_wait_for_the_migrations_and_every_selector_finds_its_pods() -> None:
    docs = all_docs()
    job = main_container(workloads()["xray-migrate"])
    assert job["command"] == ["python", "manage.py", "migrate", "--noinput"]
    labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in workloads().items()}
    for name, doc in by_kind(docs, "Deployment").items():
        [init] = pod_spec(doc)["initContainers"]
        assert "manage.py migrate --check" in init["command"][-1] and init["image"] == main_container(doc)["image"]
        assert _selects(doc["spec"]["selector"]["matchLabels"], labels[name])
    for kind, path in (("Service", ("spec", "selector")), ("PodDisruptionBudget", ("spec", "selector", "matchLabels"))):
        for name, obj in by_kind(docs, kind).items():
            wanted: Any = obj
            for key in path:
                wanted = wanted[key]
            assert any(_selects(wanted, pod) for pod in labels.values()), (kind, name)


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()
