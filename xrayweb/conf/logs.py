"""Logging: one console handler at LOG_LEVEL; client errors without their tracebacks."""

from __future__ import annotations

import logging
import re

from xrayweb.env import env_str

LOG_LEVELS = re.compile("|".join(logging.getLevelNamesMapping()))
LOG_LEVEL = env_str("LOG_LEVEL", "INFO", LOG_LEVELS, "a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"()": "xrayweb.logformat.NoTracebackForClientErrors"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {
        "handlers": ["console"],
        "level": LOG_LEVEL,
    },
    # django-axes logs every login at INFO; the audit trail already records them. Lockouts are WARNING.
    "loggers": {"axes": {"level": "WARNING"}},
}
