"""The Vietnamese catalogs, compiled for the tests that read them (the .mo files are build output: `make test` makes
them with tools.messages; a targeted run may not have)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.utils import translation
from django.utils.translation import trans_real

from tools.messages import catalogs, compile_catalog


def _forget_loaded() -> None:
    """Django keeps each language's catalog once loaded: reload it from the .mo just written."""
    trans_real._translations = {}  # type: ignore[attr-defined]
    trans_real._default = None  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def vi_catalog() -> Iterator[None]:
    for po in catalogs():
        compile_catalog(po)
    _forget_loaded()
    yield
    translation.activate("en")
