"""The console handler's formatter (settings.LOGGING)."""

from __future__ import annotations

import copy
import logging


class NoTracebackForClientErrors(logging.Formatter):
    """django.request logs every 4xx with the exception behind it: a 403 came with PermissionDenied's whole
    traceback, so each refusal of a probe filled the log. A refusal keeps its one line; a 5xx keeps its traceback.
    The record itself is left alone for any other handler."""

    def format(self, record: logging.LogRecord) -> str:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500 and record.exc_info:
            record = copy.copy(record)
            record.exc_info = None
            record.exc_text = None
        return super().format(record)
