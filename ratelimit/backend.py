"""Storage: Redis when configured, an in-process fallback while Redis is down.

The outage state machine lives here so that the limiter only ever sees "a
strategy to run on". No request waits on a dead Redis for longer than the deadline
(about the socket timeout), and during an outage only one request per
``retry_interval`` tries Redis again; the others go straight to the fallback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.storage.redis.redispy import RedispyBridge
from limits.aio.strategies import RateLimiter as Strategy
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from redis.asyncio import Redis as AsyncRedis

from .status import RedisUnavailable
from .strategy import make_strategy

logger = logging.getLogger("ratelimit")

T = TypeVar("T")
Operation = Callable[[Strategy], Awaitable[T]]


def redis_storage(url: str, key_prefix: str, socket_timeout: float) -> Storage:
    """An async ``limits`` Redis storage on redis-py; no connection is made yet.

    Accepts ``redis://``, ``rediss://`` (what REDIS_URL holds) or an ``async+`` URL.
    redis-py's pool from a URL does not retry a failed command, so a dead server
    costs one connect attempt, bounded by ``socket_connect_timeout``.
    """
    if not url.startswith("async+"):
        url = "async+" + url
    scheme = url.partition("://")[0]  # never echo the URL: it may hold a password
    try:
        storage = storage_from_string(
            url,
            implementation="redispy",
            key_prefix=key_prefix,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
        )
    except ConfigurationError:
        # "from None": limits' message repeats the URL, password included.
        raise ValueError(f"unsupported rate-limit storage scheme {scheme!r}") from None
    if not isinstance(storage, Storage):  # only async storages can serve asyncio
        raise ValueError(f"not an async storage scheme: {scheme!r}")
    return storage


class FailoverBackend:
    """Runs strategy operations on Redis, or on a MemoryStorage during an outage."""

    def __init__(
        self,
        strategy: str,
        primary: Storage | None,
        *,
        fail_open: bool = True,
        timeout: float = 0.25,
        retry_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = make_strategy(strategy, primary) if primary is not None else None
        self._fallback = make_strategy(strategy, MemoryStorage())
        self._fail_open = fail_open
        # A hit is two round trips; a healthy but slow Redis gets a timeout for each.
        self._deadline = 2 * timeout
        self._timeout = timeout
        self._retry_interval = retry_interval
        self._clock = clock
        self._next_probe: float | None = None  # set while Redis is considered down
        self._last_error = ""

    @property
    def degraded(self) -> bool:
        """Redis is configured but currently considered down."""
        return self._next_probe is not None

    async def run(self, operation: Operation[T]) -> T:
        if self._primary is None:
            return await operation(self._fallback)
        if self._next_probe is not None:
            if self._clock() < self._next_probe:
                return await self._without_redis(operation)
            # This request probes; push the next probe so concurrent ones do not.
            self._next_probe = self._clock() + self._retry_interval
        try:
            async with asyncio.timeout(self._deadline):
                result = await operation(self._primary)
        except Exception as exc:  # any failure of the shared store
            # (refused, timeout, protocol, "Event loop is closed"...) must not fail the
            # request when failing open. A bug in the shared strategy code is not
            # hidden: it fails again on the fallback and propagates.
            self._mark_down(_describe(exc))
            return await self._without_redis(operation)
        self._mark_up()
        return result

    async def check(self) -> tuple[bool, str]:
        """Ping Redis within the socket timeout; also updates the outage state."""
        if self._primary is None:
            return True, "in-process limits"
        reason = "PING failed"  # limits' check() swallows the client's exception
        try:
            async with asyncio.timeout(self._timeout):
                answered = await self._primary.storage.check()
        except TimeoutError:
            answered, reason = False, f"no answer to PING within {self._timeout:g} s"
        if answered:
            self._mark_up()
            return True, "redis ok"
        self._mark_down(reason)
        return False, f"redis unreachable: {reason}"

    async def aclose(self) -> None:
        # limits' storages have no close of their own; the redis-py client they wrap has one.
        storage = self._primary.storage if self._primary is not None else None
        if isinstance(storage, RedisStorage) and isinstance(storage.bridge, RedispyBridge):
            client = storage.bridge.get_connection()
            if isinstance(client, AsyncRedis):
                await client.aclose()

    async def _without_redis(self, operation: Operation[T]) -> T:
        if not self._fail_open:
            raise RedisUnavailable(f"redis unreachable: {self._last_error}")
        return await operation(self._fallback)

    def _mark_down(self, reason: str) -> None:
        self._last_error = reason
        if self._next_probe is None:
            # One warning per outage; requests during it must not flood the log.
            mode = "in-process limits" if self._fail_open else "refusing requests"
            logger.warning(
                "Redis unreachable (%s); %s until it answers (probing every %g s)",
                self._last_error,
                mode,
                self._retry_interval,
            )
        self._next_probe = self._clock() + self._retry_interval

    def _mark_up(self) -> None:
        if self._next_probe is not None:
            logger.info("Redis reachable again; rate limits are shared through Redis again")
            self._next_probe = None


def _describe(exc: BaseException) -> str:
    text = str(exc) or "timed out"
    return f"{type(exc).__name__}: {text}"
