"""The cache the rate limits count in (DRF's throttles, the bad-token counter), shared by every web worker.

On Redis it fails open: with Redis down or stalled a request goes on uncounted (each call waits at most
BROKER_SOCKET_TIMEOUT), as uploads go on while the broker is away (the sweeper queues them later). A warning is
logged at most once a minute per process.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
WARN_EVERY_SECONDS = 60.0


class FailOpenRedisCache(RedisCache):
    """Django's Redis cache, for counters only: an unreachable Redis reads as empty and takes no writes."""

    _warned_at = -WARN_EVERY_SECONDS

    def _down(self, exc: RedisError) -> None:
        now = time.monotonic()
        if now - FailOpenRedisCache._warned_at >= WARN_EVERY_SECONDS:
            FailOpenRedisCache._warned_at = now
            log.warning("Rate limits are not counted: the cache's Redis does not answer (%s)", exc)

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except RedisError as exc:
            self._down(exc)
            return default

    def set(self, key: Any, value: Any, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        try:
            super().set(key, value, timeout, version)
        except RedisError as exc:
            self._down(exc)

    def add(self, key: Any, value: Any, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        try:
            return super().add(key, value, timeout, version)
        except RedisError as exc:
            self._down(exc)
            return True

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return super().incr(key, delta, version)
        except RedisError as exc:
            self._down(exc)
            return delta
