"""The rate limiter and the result cache, each on its role's Redis, and the `/health` check
that names the roles.

`limits` (budgets) uses RATE_LIMIT_REDIS_URL, `cache` (results) CACHE_REDIS_URL, each REDIS_URL
when unset. Roles on one URL share one client and its pool; each role has its own breaker, its
own `bg_remover_redis_up{role}` (set by the breaker at once when Redis goes away or comes
back, and by `redis_roles` probes while no request arrives) and its own lines in the log. When
the cache's Redis is also the budgets' Redis, the cache keeps below its memory mark there
(cache/redis_store.py).
"""

from __future__ import annotations

import asyncio

from cache import CacheStore, MemoryStore, RedisStore
from operations import health
from operations.metrics import RATELIMIT_FALLBACK, report_redis_roles
from ratelimit import RateLimiter
from redisroles import CACHE, LIMITS, RedisConnection, breaker_for, connect
from settings import Settings


def limiter_and_store(settings: Settings) -> tuple[RateLimiter, CacheStore | None]:
    connections = connect(_role_urls(settings), settings.redis_socket_timeout)
    report_redis_roles(dict.fromkeys(connections, True))
    for budget in settings.hourly_limits:  # every series from 0, so that a rate() sees the first
        RATELIMIT_FALLBACK.labels(endpoint=budget)
    return _limiter(settings, connections.get(LIMITS)), _store(settings, connections)


async def redis_roles(limiter: RateLimiter, store: CacheStore | None) -> dict[str, bool | None]:
    """Each role -> its Redis answers a probe (which also moves its breaker), or None where
    the role has no Redis."""
    limits = (await limiter.check_backend())[0] if limiter.uses_redis else None
    cache = (await store.check())[0] if isinstance(store, RedisStore) else None
    return {LIMITS: limits, CACHE: cache}


async def redis_check(
    limiter: RateLimiter, store: CacheStore | None, fail_open: bool
) -> health.Check:
    """One check in the contract's shape, a detail per role: `limits: …; cache: …`. Budgets
    down while failing closed make the service unhealthy; anything else down, degraded."""
    limits, cache = await asyncio.gather(
        limiter.check_backend() if limiter.enabled else _constant("off"),
        store.check() if store is not None else _constant("off"),
    )
    return health.Check(
        limits[0] and cache[0],
        f"limits: {limits[1]}; cache: {cache[1]}",
        critical=not limits[0] and not fail_open,
    )


def _role_urls(settings: Settings) -> dict[str, str]:
    urls = {}
    if settings.rate_limit_enabled and settings.limits_redis:
        urls[LIMITS] = settings.limits_redis
    if settings.cache_enabled and settings.cache_redis:
        urls[CACHE] = settings.cache_redis
    return urls


def _limiter(settings: Settings, connection: RedisConnection | None) -> RateLimiter:
    return RateLimiter(
        limits={budget: f"{amount}/hour" for budget, amount in settings.hourly_limits.items()},
        strategy=settings.rate_limit_strategy,
        fail_open=settings.rate_limit_fail_open,
        enabled=settings.rate_limit_enabled,
        socket_timeout=settings.redis_socket_timeout,
        retry_interval=settings.redis_retry_interval,
        loadtest_limit=f"{settings.rate_limit_loadtest_per_hour}/hour",
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


async def _constant(detail: str) -> tuple[bool, str]:
    return True, detail
