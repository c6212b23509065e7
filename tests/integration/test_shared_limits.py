"""Issue 28, item 5: the rate limits counted in each gunicorn worker's memory, so two workers allowed twice the
documented limits (40 bad tokens answered 401 before the first 429). Two web servers, real processes on the test
database, share the counts: in the database (no REDIS_URL, the embedded default) or in Redis. Requests go to
each in turn, so a per-process count would allow every limit twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from itertools import cycle
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.cache import cache
from rest_framework.authtoken.models import Token

from diagnosis.models import Clinic
from tests.factories import make_member
from tests.integration.conftest import ROOT, database_url, gunicorn_on, listening_socket, url_of, wait_for

API = "/api/v1/studies/"


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


@pytest.fixture(params=["database", "redis"])
def two_servers(request: Any, transactional_db: None, tmp_path: Path, settings: Any) -> Iterator[list[str]]:
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SECRET_KEY": "integration"}
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env.pop("REDIS_URL", None)
    if request.param == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    if request.param == "database":  # this process may count in Redis (CI's REDIS_URL): its migrate made no table
        manage = [sys.executable, "manage.py", "createcachetable"]
        subprocess.run(manage, cwd=ROOT, env=env, check=True, capture_output=True)
    with listening_socket() as first, listening_socket() as second:
        logs = [tmp_path / "gunicorn0.log", tmp_path / "gunicorn1.log"]
        procs = [gunicorn_on(sock, env, log) for sock, log in zip((first, second), logs, strict=True)]
        urls = [url_of(first), url_of(second)]
        try:
            for url, log in zip(urls, logs, strict=True):
                wait_for(partial(_answers, f"{url}/accounts/login/"), 60, "gunicorn answering", [log])
            yield urls
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(15)
            cache.clear()  # the database's counts (the test database's table) would refuse later tests' bad tokens


def test_two_web_servers_allow_the_documented_limits_together(two_servers: list[str]) -> None:
    servers = cycle(two_servers)
    # API_SUBMIT_THROTTLE_RATE: 120 submissions a minute per user (an empty one is refused, and counted), then 429.
    alice = make_member("alice", Clinic.objects.create(name="A", slug="a"))
    token = Token.objects.create(user=alice).key
    with requests.Session() as s:
        s.headers["Authorization"] = f"Token {token}"
        codes = [s.post(next(servers) + API, data={}, timeout=10).status_code for _ in range(121)]
    assert codes == [400] * 120 + [429]

    # API_BAD_TOKEN_LIMIT: 20 invalid tokens a minute from one address, then 429.
    codes = [
        requests.get(next(servers) + API, headers={"Authorization": f"Token bad{i}"}, timeout=10).status_code
        for i in range(22)
    ]
    assert codes == [401] * 20 + [429] * 2

    # LOGIN_FAILURE_LIMIT: an account is locked after 5 failed logins, by whichever server.
    with requests.Session() as s:
        s.get(two_servers[0] + "/accounts/login/", timeout=10)

        def login(password: str) -> int:
            form = {"username": "alice", "password": password, "csrfmiddlewaretoken": s.cookies["csrftoken"]}
            return s.post(next(servers) + "/accounts/login/", data=form, allow_redirects=False, timeout=10).status_code

        assert [login("wrong") for _ in range(5)] == [200] * 4 + [429]  # the fifth failure locks
        assert login("alice-pass-123") == 429
