"""A refusal is logged on one line; a server error keeps its traceback (the console handler's formatter)."""

from __future__ import annotations

import logging
import sys

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse


def _console() -> logging.Handler:
    return next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler))


def _record(status: int) -> logging.LogRecord:
    try:
        raise PermissionDenied("no")
    except PermissionDenied:
        record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Forbidden", None, sys.exc_info())
    record.status_code = status
    return record


@pytest.mark.parametrize(("status", "traceback"), [(403, False), (404, False), (500, True)])
def test_the_console_keeps_a_traceback_only_for_a_server_error(status: int, traceback: bool) -> None:
    record = _record(status)
    assert ("Traceback" in _console().format(record)) is traceback
    assert record.exc_info is not None  # left for any other handler


@pytest.mark.django_db
def test_a_403_is_logged_by_django_with_its_traceback_and_the_console_drops_it(
    alice, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    client.force_login(alice)  # a clinician: the people page is the clinic admin's
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get(reverse("diagnosis:people")).status_code == 403
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info is not None and record.exc_info[0] is PermissionDenied
    assert "Traceback" not in _console().format(record)
