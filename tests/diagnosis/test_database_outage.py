"""A database outage answers 503 with Retry-After, not 500 (issue 11's fault suite; the real PostgreSQL restart
is not driven here: CI's PostgreSQL is a shared server that other work on the machine uses)."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import Client

from diagnosis import selectors
from tests.factories import token_client

pytestmark = pytest.mark.django_db


def _outage(*args: object, **kwargs: object) -> None:
    raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")


@pytest.mark.parametrize("api", [True, False])
def test_a_database_outage_is_503_with_retry_after(alice, monkeypatch, api: bool) -> None:
    monkeypatch.setattr(selectors, "history", _outage)
    if api:
        api_client = token_client(alice)
        api_client.raise_request_exception = False
        answer = api_client.get("/api/v1/studies/")
        assert answer.json()["detail"].startswith("The database is unavailable")
        status, retry = answer.status_code, answer["Retry-After"]
    else:
        client = Client(raise_request_exception=False)
        client.force_login(alice)
        page = client.get("/history/")
        status, retry = page.status_code, page["Retry-After"]
    assert (status, retry) == (503, "10")


def test_other_errors_stay_500(alice, monkeypatch) -> None:
    monkeypatch.setattr(selectors, "history", lambda *a, **k: 1 / 0)
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    assert client.get("/history/").status_code == 500
