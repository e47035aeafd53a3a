"""Storage: Redis when configured, an in-process fallback while Redis is down.

The outage policy (deadline, skipping Redis during an outage, one probe per interval, one log
line each way) is the role's `redisroles.Breaker`, the same as the cache's; this module only
decides where a strategy runs: on Redis, on the fallback (fail open), or nowhere (fail closed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.storage.redis.redispy import RedispyBridge
from limits.aio.strategies import RateLimiter as Strategy
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from redis.asyncio import Redis, RedisCluster

from redisroles import Breaker, RedisConnection, RedisDown

from .status import RedisUnavailable
from .strategy import make_strategy

T = TypeVar("T")
Operation = Callable[[Strategy], Awaitable[T]]


def redis_storage(connection: RedisConnection, key_prefix: str) -> Storage:
    """An async `limits` Redis storage on redis-py over `connection`: its connection pool for
    a server (`limits` takes `connection_pool=`); for a cluster, `limits`' own cluster client,
    built with the connection's options. No connection is made yet."""
    try:
        storage = storage_from_string(
            connection.address.limits_url,
            implementation="redispy",
            key_prefix=key_prefix,
            **connection.limits_options,
        )
    except ConfigurationError:
        # "from None": limits' message repeats the URL, password included.
        scheme = connection.address.scheme
        raise ValueError(f"unsupported rate-limit storage scheme {scheme!r}") from None
    if not isinstance(storage, Storage):  # only async storages can serve asyncio
        raise ValueError(f"not an async storage scheme: {connection.address.scheme!r}")
    return storage


class FailoverBackend:
    """Runs strategy operations on Redis, or on a MemoryStorage while its breaker is open."""

    def __init__(
        self,
        strategy: str,
        primary: Storage | None,
        breaker: Breaker | None = None,
        probe: Callable[[], Awaitable[None]] | None = None,
        *,
        fail_open: bool = True,
    ) -> None:
        """`probe` raises unless Redis can serve (the health check's question)."""
        if not (primary is None) == (breaker is None) == (probe is None):
            raise ValueError("a Redis storage needs its breaker and probe, and only it")
        self._primary = make_strategy(strategy, primary) if primary is not None else None
        self._fallback = make_strategy(strategy, MemoryStorage())
        self._breaker = breaker
        self._probe = probe
        self._fail_open = fail_open

    @property
    def degraded(self) -> bool:
        """Redis is configured but currently considered down."""
        return self._breaker is not None and not self._breaker.up

    async def run(self, operation: Operation[T]) -> tuple[T, bool]:
        """The operation's answer, and whether the in-process fallback gave it.

        A failure on Redis (refused, timeout, protocol, "Event loop is closed"...) never fails
        the request when failing open. A bug in the shared strategy code is not hidden: it
        fails again on the fallback and propagates."""
        if self._primary is None or self._breaker is None:
            return await operation(self._fallback), False
        primary = self._primary
        try:
            return await self._breaker.call(lambda: operation(primary)), False
        except RedisDown:
            if not self._fail_open:
                raise RedisUnavailable(f"redis unreachable: {self._breaker.last_error}") from None
            return await operation(self._fallback), True

    async def check(self) -> tuple[bool, str]:
        """Probe Redis within the breaker's deadline; also updates the outage state."""
        if self._breaker is None or self._probe is None:
            return True, "in-process limits"
        try:
            await self._breaker.call(self._probe, probe=True)
        except RedisDown:
            return False, f"redis unreachable: {self._breaker.last_error}"
        return True, "redis ok"

    async def aclose(self) -> None:
        """Close the client `limits` built: its cluster client (on a server it runs on the
        connection's pool, which a Redis client given a pool leaves open)."""
        storage = self._primary.storage if self._primary is not None else None
        if isinstance(storage, RedisStorage) and isinstance(storage.bridge, RedispyBridge):
            client = storage.bridge.get_connection()
            if isinstance(client, Redis | RedisCluster):
                await client.aclose()
