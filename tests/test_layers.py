"""The import graph runs one way: read from the source (every import statement, lazy ones included).

    xrayweb (project: settings, launcher)  ->  diagnosis (the Django app)  ->  worker (Django-free library)
                           \\-> xrayclient (REST client, requests only) <-/
    tools (benchmarks, simulations: not shipped) may import any of them; none of them imports tools.

Inside the app, interfaces (pages, API, tasks, commands) call services, services use models, never back up; every
app module is named below as one or the other. Between modules, the graph has no cycle at all.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("worker", "diagnosis", "xrayweb", "xrayclient", "tools")
# What each package may not import (top-level names or dotted prefixes).
FORBIDDEN = {
    "worker": ("django", "rest_framework", "celery", "diagnosis", "xrayweb", "xrayclient", "tools"),
    "xrayclient": ("django", "rest_framework", "celery", "diagnosis", "xrayweb", "worker", "tools"),
    "diagnosis": ("xrayweb", "tools"),
    "xrayweb": ("tools",),
}
# Layers inside the app, lowest first: a module may import its own layer or lower ones, never a higher one.
APP_LAYERS = (
    (
        "diagnosis.models",
        "diagnosis.task_names",
        "diagnosis.archives",
        "diagnosis.sizes",
        "diagnosis.numbers",
        "diagnosis.refusal_words",
    ),
    (
        "diagnosis.access",
        "diagnosis.audit",
        "diagnosis.audit_words",
        "diagnosis.validation",
        "diagnosis.selectors",
        "diagnosis.jobs",
        "diagnosis.dispatch",
        "diagnosis.result_files",
        "diagnosis.liveness",
        "diagnosis.batching",
        "diagnosis.predictor",
        "diagnosis.pipeline",
        "diagnosis.pipeline_steps",
        "diagnosis.intake",
        "diagnosis.study_details",
        "diagnosis.dicom_instances",
        "diagnosis.reviews",
        "diagnosis.people",
        "diagnosis.lockout",
        "diagnosis.viewing",
        "diagnosis.charts",
        "diagnosis.exports",
        "diagnosis.housekeeping",
        "diagnosis.pacs",
        "diagnosis.pacs_documents",
        "diagnosis.site",
        "diagnosis.locale_settings",
    ),
)
# The app's interfaces, above every layer: pages, API, tasks, commands, admin, middleware, signal receivers, wiring.
INTERFACES = (
    "diagnosis",
    "diagnosis.views",
    "diagnosis.clinic_views",
    "diagnosis.site_views",
    "diagnosis.forms",
    "diagnosis.filters",
    "diagnosis.presenters",
    "diagnosis.context_processors",
    "diagnosis.templatetags",
    "diagnosis.api",
    "diagnosis.tasks",
    "diagnosis.dicom_listener",
    "diagnosis.management",
    "diagnosis.admin",
    "diagnosis.apps",
    "diagnosis.urls",
    "diagnosis.limits",
    "diagnosis.errors",
    "diagnosis.signals",
    "diagnosis.locale_views",
    "diagnosis.locale_middleware",
)


def modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer(module: str) -> int:
    for rank, members in enumerate(APP_LAYERS):
        if any(within(module, m) for m in members):
            return rank
    return len(APP_LAYERS)


def violations(forbidden: dict[str, tuple[str, ...]] = FORBIDDEN) -> list[str]:
    found = []
    for package, banned in forbidden.items():
        for module, path in modules(package):
            for name in imports(path):
                found += [f"{module} imports {name}" for prefix in banned if within(name, prefix)]
    for module, path in modules("diagnosis"):
        for name in imports(path):
            # `from diagnosis import jobs` also yields the bare package name, which is no layer.
            if name != "diagnosis" and within(name, "diagnosis") and layer(name) > layer(module):
                found.append(f"{module} (layer {layer(module)}) imports {name} (layer {layer(name)})")
    return sorted(set(found))


def unplaced() -> list[str]:
    """The app modules named neither in a layer nor as an interface: the layer rule cannot see them."""
    named = [m for members in APP_LAYERS for m in members] + [i for i in INTERFACES if i != "diagnosis"]
    return [m for m, _ in modules("diagnosis") if m != "diagnosis" and not any(within(m, n) for n in named)]


def module_graph() -> dict[str, set[str]]:
    """Module -> the modules of the tree it imports. `from x import y` is x.y when that is a module, else x; a
    dotted import also runs the packages above it (their __init__), so those count too, except the importer's own
    packages: a submodule's package is already being imported when the submodule runs (a package's __init__ that
    re-exports its submodules is no cycle)."""
    known = {module for package in PACKAGES for module, _ in modules(package)}

    def targets(name: str) -> Iterator[str]:
        parts = name.split(".")
        yield from (".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in known)

    graph: dict[str, set[str]] = {module: set() for module in known}
    for package in PACKAGES:
        for module, path in modules(package):
            own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
            graph[module] |= {t for name in imports(path) for t in targets(name) if t not in own} - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted: every one holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            if component:
                found.append(sorted([node, *component]))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for package in PACKAGES:
        for _, path in modules(package):
            graph[package] |= {n.split(".")[0] for n in imports(path)} & set(PACKAGES) - {package}
    return graph


def test_no_module_imports_across_or_back_up_its_layer() -> None:
    assert violations() == []


def test_the_package_graph_has_no_cycle() -> None:
    graph = package_graph()
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"import cycle: {' -> '.join((*path, node))}"
        if node not in done:
            for nxt in graph[node]:
                visit(nxt, (*path, node))
            done.add(node)

    for package in PACKAGES:
        visit(package, ())


def test_every_app_module_is_a_layer_or_an_interface() -> None:
    assert unplaced() == []


def test_the_module_graph_has_no_cycle() -> None:
    assert cycles(module_graph()) == []


def test_the_cycle_checker_sees_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lazy import closing a loop of three modules is a cycle; `from package import module` names the module."""
    (tmp_path / "worker" / "ml").mkdir(parents=True)
    (tmp_path / "worker" / "__init__.py").write_text("")
    (tmp_path / "worker" / "ml" / "__init__.py").write_text("")
    (tmp_path / "worker" / "ml" / "a.py").write_text("from worker.ml import b\n")
    (tmp_path / "worker" / "ml" / "b.py").write_text("import worker.ml.c\n")
    (tmp_path / "worker" / "ml" / "c.py").write_text("def f():\n    from worker.ml.a import g\n")
    (tmp_path / "worker" / "ml" / "d.py").write_text("from worker.ml import a, c\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert cycles(module_graph()) == [["worker.ml.a", "worker.ml.b", "worker.ml.c"]]
    (tmp_path / "worker" / "ml" / "c.py").write_text("def f():\n    from worker import ml\n")  # the package only
    assert cycles(module_graph()) == []


def test_the_checker_sees_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules above can fail: a library module that imports Django, and a service that imports a view."""
    fake_root = tmp_path
    (fake_root / "worker").mkdir()
    (fake_root / "worker" / "lib.py").write_text("def f():\n    from django.conf import settings\n")
    (fake_root / "diagnosis").mkdir()
    (fake_root / "diagnosis" / "jobs.py").write_text("from diagnosis.views import upload\n")
    (fake_root / "diagnosis" / "views.py").write_text("from diagnosis import jobs\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    assert violations() == [
        "diagnosis.jobs (layer 1) imports diagnosis.views (layer 2)",
        "diagnosis.jobs (layer 1) imports diagnosis.views.upload (layer 2)",
        "worker.lib imports django.conf",
        "worker.lib imports django.conf.settings",
    ]


def test_the_web_process_never_loads_tensorflow_scipy_sklearn_pynetdicom_or_highdicom() -> None:
    """No ML framework in the web process; nor SciPy and scikit-learn, which the site and drift figures compute with
    (imported where they compute): about 1.5 s of CPU at every start of a web, worker or manage.py process; nor
    pynetdicom and highdicom, which a PACS send stores and builds with (diagnosis.pacs): a third of a second more."""
    libraries = ("tensorflow", "keras", "jax", "torch", "scipy", "sklearn", "pynetdicom", "highdicom")
    code = (
        "import django, sys; django.setup(); import xrayweb.urls, xrayweb.wsgi, diagnosis.tasks, diagnosis.admin;"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        f"print(sorted(m for m in {libraries!r} if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "xrayweb.settings", "DJANGO_SECRET_KEY": "layers"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[-2] == "[]", out.stderr[-2000:]
