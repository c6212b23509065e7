"""Reading settings from the environment: with settings, the only module that reads os.environ. Each helper
names the variable and what it expected when a value is bad, so a typo fails at start-up, not at the first request
that needs the value."""

from __future__ import annotations

import os
import re
import zoneinfo

from django.core.exceptions import ImproperlyConfigured


def env_text(name: str, default: str = "") -> str:
    """The variable as it is (set but empty stays empty), or `default` when it is not set."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} must be <= {maximum}")
    return value


def env_str(name: str, default: str, valid: re.Pattern[str], meaning: str) -> str:
    raw = os.environ.get(name) or default
    if not valid.fullmatch(raw):
        raise ImproperlyConfigured(f"{name}={raw!r} is not {meaning}")
    return raw


def env_time_zone(name: str, default: str) -> str:
    raw = os.environ.get(name) or default
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)") from exc
    return raw


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    raw = os.environ.get(name) or default
    if raw and not raw.startswith(tuple(f"{scheme}://" for scheme in schemes)):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a URL starting with {' or '.join(schemes)}://")
    return raw
