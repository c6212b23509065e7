"""The shipped model card as the web process reads it (plain JSON; it never loads TensorFlow)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.conf import settings

from worker.ml.spec import ModelSpec


@lru_cache(maxsize=4)
def _load(directory: str) -> ModelSpec:
    return ModelSpec.load(Path(directory))


def card() -> ModelSpec:
    """The model card of MODEL_DIR."""
    return _load(str(settings.MODEL_DIR))


def model_version() -> str:
    return card().version


def card_target_sensitivity() -> float:
    return float(card().card.get("target_sensitivity", 0.95))
