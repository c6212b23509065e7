"""The rate limits' Redis cache fails open: with Redis away a request goes on uncounted, never a 500."""

from __future__ import annotations

import socket

from xrayweb.cache import FailOpenRedisCache


def test_an_unreachable_redis_reads_as_empty_and_takes_no_writes() -> None:
    options = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    with socket.socket() as held:  # bound and never listening: connections are refused, and no server can take it
        held.bind(("127.0.0.1", 0))
        cache = FailOpenRedisCache(f"redis://127.0.0.1:{held.getsockname()[1]}/0", {"OPTIONS": options})
        assert cache.get("throttle_user_1", []) == []
        cache.set("throttle_user_1", [1.0], 60)
        assert cache.add("bad-token:10.0.0.1", 1, 60) is True  # as if the first: no incr follows
        assert cache.incr("bad-token:10.0.0.1") == 1
