"""One shipped model for the modules that judge with it as it ships (default runtime and batch), loaded once for
the session instead of once per module (each load compiles every batch shape: seconds of CPU)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from worker.ml.inference import Predictor


@pytest.fixture(scope="session")
def shipped_predictor() -> Predictor:
    """The shipped model, as Predictor(ModelSpec.load()) makes it. A test may monkeypatch it (undone after the
    test) but must not change it otherwise."""
    from worker.ml.inference import Predictor
    from worker.ml.spec import ModelSpec

    return Predictor(ModelSpec.load())
