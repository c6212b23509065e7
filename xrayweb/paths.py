"""Defaults shared by settings and the launcher (which prepares settings' environment, so it cannot import them):
the data folder, and the DICOM listener's port and AE title."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = BASE_DIR / ".data"
DEFAULT_DICOM_PORT = 11112  # the port IANA registers for DICOM
DEFAULT_AE_TITLE = "XRAYAI"


def data_dir(environ: Mapping[str, str]) -> Path:
    """XRAY_DATA_DIR, or .data in the checkout: where the embedded defaults (SQLite, media, Redis) live."""
    return Path(environ.get("XRAY_DATA_DIR") or DEFAULT_DATA_DIR)
