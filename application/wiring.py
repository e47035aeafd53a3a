"""What the request flow runs on, built from the settings: the rate limiter and the result
cache store, each on its role's Redis when one is configured; the file folders and their
retention sweep; the watch that reports whether each Redis role answers.

Roles on one URL share one client and its pool; each role has its own breaker. When the
cache's Redis is also the budgets' Redis, the cache keeps below its memory mark there
(cache/redis_store.py).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path

from application.redis_roles import redis_check, redis_roles
from cache import CacheStore, MemoryStore, RedisStore
from contract import routes
from operations import health
from operations.metrics import RATELIMIT_FALLBACK, report_redis_roles
from operations.retention import start_retention
from ratelimit import RateLimiter
from redisroles import CACHE, LIMITS, RedisConnection, breaker_for, connect
from settings import Settings

RETENTION_SWEEP_S = 600
REDIS_PROBE_S = 10  # how often each Redis role is pinged for bg_remover_redis_up


def limiter_and_store(settings: Settings) -> tuple[RateLimiter, CacheStore | None]:
    connections = connect(_role_urls(settings), settings.redis_socket_timeout)
    report_redis_roles(dict.fromkeys(connections, True))
    for budget in settings.hourly_limits:  # every series from 0, so that a rate() sees the first
        RATELIMIT_FALLBACK.labels(endpoint=budget)
    return _limiter(settings, connections.get(LIMITS)), _store(settings, connections)


def _role_urls(settings: Settings) -> dict[str, str]:
    urls = {}
    if settings.rate_limit_enabled and settings.limits_redis:
        urls[LIMITS] = settings.limits_redis
    if settings.cache_enabled and settings.cache_redis:
        urls[CACHE] = settings.cache_redis
    return urls


def _limiter(settings: Settings, connection: RedisConnection | None) -> RateLimiter:
    return RateLimiter(
        limits={
            budget: f"{amount * routes.parts_of(budget)}/hour"
            for budget, amount in settings.hourly_limits.items()
        },
        strategy=settings.rate_limit_strategy,
        fail_open=settings.rate_limit_fail_open,
        enabled=settings.rate_limit_enabled,
        socket_timeout=settings.redis_socket_timeout,
        retry_interval=settings.redis_retry_interval,
        loadtest_limit={
            budget: f"{settings.rate_limit_loadtest_per_hour * routes.parts_of(budget)}/hour"
            for budget in settings.hourly_limits
        },
        connection=connection,
        on_redis_change=lambda up: report_redis_roles({LIMITS: up}),
        on_fallback=lambda endpoint: RATELIMIT_FALLBACK.labels(endpoint=endpoint).inc(),
    )


def _store(settings: Settings, connections: dict[str, RedisConnection]) -> CacheStore | None:
    if not settings.cache_enabled:
        return None
    connection = connections.get(CACHE)
    if connection is None:
        return MemoryStore(
            settings.cache_max_bytes, settings.cache_max_item_bytes, settings.cache_ttl_s
        )
    budgets = connections.get(LIMITS)
    breaker = breaker_for(
        CACHE,
        settings.redis_socket_timeout,
        settings.redis_retry_interval,
        "results not cached",
        lambda up: report_redis_roles({CACHE: up}),
    )
    return RedisStore(
        connection,
        breaker,
        max_item_bytes=settings.cache_max_item_bytes,
        ttl_s=settings.cache_ttl_s,
        budgets_here=budgets is not None and connection.address.shares_server_with(budgets.address),
        memory_percent=settings.cache_redis_memory_percent,
        unbounded_max_bytes=settings.cache_max_bytes,
    )


@dataclass
class Wiring:
    settings: Settings
    limiter: RateLimiter
    store: CacheStore | None  # None: CACHE_ENABLED=false

    @classmethod
    def from_settings(cls, settings: Settings) -> Wiring:
        return cls(settings, *limiter_and_store(settings))

    @property
    def folders(self) -> list[Path]:
        return [self.settings.upload_dir, self.settings.output_dir]

    def start_housekeeping(self) -> threading.Event:
        """Create the file folders and sweep expired files until the returned event is set."""
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
        ttl_s = self.settings.file_ttl_hours * 3600
        return start_retention(self.folders, ttl_s, RETENTION_SWEEP_S)

    async def watch_redis(self, interval_s: float = REDIS_PROBE_S) -> None:
        """Report whether each Redis role answers (`bg_remover_redis_up`) until cancelled, so
        an outage shows even while no request arrives."""
        while True:
            report_redis_roles(await self.redis_roles())
            await asyncio.sleep(interval_s)

    async def redis_roles(self) -> dict[str, bool | None]:
        """Each Redis role -> its Redis answers, or None where the role has no Redis."""
        return await redis_roles(self.limiter, self.store)

    async def redis_check(self) -> health.Check:
        """/health's `redis`, a detail per role (`application.redis_roles`)."""
        return await redis_check(self.limiter, self.store, self.settings.rate_limit_fail_open)

    async def aclose(self) -> None:
        """Close the Redis clients, from the event loop that used them."""
        await self.limiter.aclose()
        if self.store is not None:
            await self.store.aclose()
