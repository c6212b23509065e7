"""The locks that `make` and the Dockerfiles install from name every requirement of their input (`make lock`)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def names(path: Path) -> set[str]:
    """The normalised project names of a requirements file, following -r includes."""
    found: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r"):
            found |= names(path.parent / line[2:].strip())
        elif line and not line.startswith("-"):
            name = re.match(r"[A-Za-z0-9._-]+", line)
            assert name, line
            found.add(re.sub(r"[-_.]+", "-", name.group()).lower())
    return found


def pinned(lock: Path) -> set[str]:
    return {re.sub(r"[-_.]+", "-", m).lower() for m in re.findall(r"^([A-Za-z0-9._-]+)==", lock.read_text(), re.M)}


@pytest.mark.parametrize(
    ("source", "lock"), [("requirements.txt", "requirements.lock"), ("requirements-dev.txt", "requirements-dev.lock")]
)
def test_the_lock_pins_every_requirement(source: str, lock: str) -> None:
    missing = names(ROOT / source) - pinned(ROOT / lock)
    assert not missing, f"{lock} lacks {sorted(missing)}: run `make lock` after editing {source}"


def test_the_gpu_lock_swaps_tensorflow_for_keras_on_jax_with_cuda() -> None:
    gpu = pinned(ROOT / "requirements-gpu.lock")
    assert {"jax", "jaxlib", "jax-cuda12-plugin", "keras", "h5py"} <= gpu
    assert not {"tensorflow", "tensorflow-cpu"} & gpu
    assert names(ROOT / "requirements.txt") - {"tensorflow-cpu"} <= gpu
