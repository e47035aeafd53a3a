"""RateLimiter: per-endpoint limits for per-client budgets.

The three ``limits`` concerns stay apart: the limit (a parsed RateLimitItem per
endpoint), the storage (FailoverBackend: Redis or in-process) and the strategy
(moving window by default, chosen by its ``limits`` name).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from limits import RateLimitItem, parse

from redisroles import LIMITS, RedisConnection, breaker_for, parse_url

from .backend import FailoverBackend, redis_storage
from .status import RateLimitExceeded, RateLimitStatus
from .strategy import DEFAULT_STRATEGY, peek, spend, strategy_class


class RateLimiter:
    """Spend per-client budgets, shared through Redis when ``redis_url`` is set.

    - Without ``redis_url``: one in-process budget per RateLimiter (one replica).
    - With it: one budget shared by every instance using the same Redis and prefix.
      Cost of one ``hit`` with the moving window: 2 round trips (two EVALSHA,
      counted with MONITOR and INFO commandstats), refused or not.
    - Redis down and ``fail_open``: requests are counted in process (a fresh budget
      per replica, so briefly up to the limit per replica), one warning is logged,
      Redis is probed at most every ``retry_interval`` s and used again when it
      answers; ``on_fallback(endpoint)`` is called for each spend decided in process.
      Without ``fail_open``: RedisUnavailable.

    Use one instance from one event loop: redis-py's connections belong to the loop
    that opened them. Construction opens nothing, so building it at import is fine.
    """

    def __init__(
        self,
        limits: Mapping[str, str],
        redis_url: str | None = None,
        strategy: str = DEFAULT_STRATEGY,
        fail_open: bool = True,
        enabled: bool = True,
        socket_timeout: float = 0.25,
        retry_interval: float = 5.0,
        key_prefix: str = "bg_remover",
        clock: Callable[[], float] = time.monotonic,
        loadtest_limit: str | Mapping[str, str] | None = None,
        *,
        connection: RedisConnection | None = None,
        on_redis_change: Callable[[bool], None] | None = None,
        on_fallback: Callable[[str], None] | None = None,
    ) -> None:
        """``limits`` maps an endpoint name to a ``limits`` string such as ``"10/hour"``;
        ``loadtest_limit`` is every limited endpoint's limit for a load-test client (or, as
        a mapping, each endpoint's).
        ``connection`` (a client shared with other roles) wins over ``redis_url``;
        ``on_redis_change(up)`` is told when Redis goes away or comes back.

        Raises ValueError for an unparsable limit, an unknown strategy or Redis URL, so
        that a bad configuration fails at start-up rather than on the first request.
        """
        strategy_class(strategy)  # validate before anything is built
        self.enabled = enabled
        self._strategy = strategy
        self._items: dict[str, RateLimitItem] = {
            endpoint: parse(text) for endpoint, text in limits.items()
        }
        if isinstance(loadtest_limit, str):
            loadtest_limit = dict.fromkeys(self._items, loadtest_limit)
        self._loadtest_items = {
            endpoint: parse(text) for endpoint, text in (loadtest_limit or {}).items()
        }
        self._on_fallback = on_fallback
        self._connection = connection
        if connection is None and redis_url:
            connection = self._connection = RedisConnection(parse_url(redis_url), socket_timeout)
        if connection is None:
            self._backend = FailoverBackend(strategy, None)
            return
        meanwhile = "in-process limits" if fail_open else "requests refused"
        breaker = breaker_for(
            LIMITS, socket_timeout, retry_interval, meanwhile, on_redis_change, clock
        )
        storage = redis_storage(connection, key_prefix)
        self._backend = FailoverBackend(
            strategy, storage, breaker, connection.probe, fail_open=fail_open
        )

    @property
    def uses_redis(self) -> bool:
        """Budgets are counted in Redis (when it answers)."""
        return self.enabled and self._connection is not None

    @property
    def degraded(self) -> bool:
        """Redis is configured but limits are currently kept in process."""
        return self._backend.degraded

    async def hit(
        self, endpoint: str, client_key: str, cost: int = 1, *, loadtest: bool = False
    ) -> RateLimitStatus | None:
        """Spend ``cost`` units of ``client_key``'s budget on ``endpoint``, all or none.
        A ``loadtest`` client's budget is at the load-test limit.

        Returns the status after spending (``remaining`` counts down to 0), or None
        when nothing is limited — limiter disabled or no limit configured for the
        endpoint — in which case the caller sends no rate-limit headers.

        Raises RateLimitExceeded (nothing spent) when the cost does not fit, also
        when it exceeds the whole limit; RedisUnavailable when Redis is down and
        ``fail_open`` is False; ValueError when ``cost`` < 1.
        """
        item = self._item(endpoint, loadtest)
        if not self.enabled or item is None:
            return None
        if cost < 1:
            raise ValueError(f"cost must be at least 1, not {cost}")
        # The strategy is part of the key: strategies store different Redis types
        # under it, so switching strategy on a live Redis must not meet old keys.
        identifiers = (self._strategy, endpoint, client_key)
        status, in_process = await self._backend.run(
            lambda strategy: spend(strategy, item, identifiers, cost)
        )
        if in_process and self._on_fallback is not None:
            self._on_fallback(endpoint)
        if status.exceeded:
            raise RateLimitExceeded(status)
        return status

    async def peek(
        self, endpoint: str, client_key: str, *, loadtest: bool = False
    ) -> RateLimitStatus | None:
        """The client's budget on ``endpoint`` without spending any; None when unlimited."""
        item = self._item(endpoint, loadtest)
        if not self.enabled or item is None:
            return None
        identifiers = (self._strategy, endpoint, client_key)
        status, _ = await self._backend.run(lambda strategy: peek(strategy, item, identifiers))
        return status

    def _item(self, endpoint: str, loadtest: bool) -> RateLimitItem | None:
        """The endpoint's limit; a load-test client's own limit on every limited endpoint."""
        item = self._items.get(endpoint)
        if item and loadtest:
            return self._loadtest_items.get(endpoint, item)
        return item

    async def check_backend(self) -> tuple[bool, str]:
        """For /health: ``(True, "in-process limits")`` without Redis, ``(True,
        "redis ok")`` when PING answers, ``(False, "redis unreachable: …")`` otherwise.
        Returns within about twice ``socket_timeout``."""
        return await self._backend.check()

    async def aclose(self) -> None:
        """Close the Redis connections, from the loop that used them (in-process: nothing).
        A connection shared with the cache is closed by whichever closes first."""
        await self._backend.aclose()
        if self._connection is not None:
            await self._connection.aclose()
