"""Default locations, shared by settings and the launcher (which prepares settings' environment, so it cannot
import them)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = BASE_DIR / ".data"


def data_dir(environ: Mapping[str, str]) -> Path:
    """XRAY_DATA_DIR, or .data in the checkout: where the embedded defaults (SQLite, media, Redis) live."""
    return Path(environ.get("XRAY_DATA_DIR") or DEFAULT_DATA_DIR)
