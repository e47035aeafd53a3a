"""What the request flow runs on, built from the settings: the rate limiter and the result
cache store (each on Redis when REDIS_URL is set), the file folders and their retention sweep,
and the watch that reports whether each Redis role answers (`bg_remover_redis_up`)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path

from application.redis_roles import redis_roles
from cache import CacheStore, open_store
from operations import health
from operations.metrics import report_redis_roles
from operations.retention import start_retention
from ratelimit import RateLimiter
from settings import Settings

RETENTION_SWEEP_S = 600
REDIS_PROBE_S = 10  # how often each Redis role is pinged for bg_remover_redis_up


def limiter_for(settings: Settings) -> RateLimiter:
    return RateLimiter(
        limits={budget: f"{amount}/hour" for budget, amount in settings.hourly_limits.items()},
        redis_url=settings.redis_url,
        strategy=settings.rate_limit_strategy,
        fail_open=settings.rate_limit_fail_open,
        enabled=settings.rate_limit_enabled,
        socket_timeout=settings.redis_socket_timeout,
        retry_interval=settings.redis_retry_interval,
        loadtest_limit=f"{settings.rate_limit_loadtest_per_hour}/hour",
    )


def cache_store_for(settings: Settings) -> CacheStore | None:
    if not settings.cache_enabled:
        return None
    return open_store(
        settings.redis_url,
        max_bytes=settings.cache_max_bytes,
        max_item_bytes=settings.cache_max_item_bytes,
        ttl_s=settings.cache_ttl_s,
        timeout=settings.redis_socket_timeout,
        retry_interval=settings.redis_retry_interval,
    )


@dataclass
class Wiring:
    settings: Settings
    limiter: RateLimiter
    store: CacheStore | None  # None: CACHE_ENABLED=false

    @classmethod
    def from_settings(cls, settings: Settings) -> Wiring:
        return cls(settings, limiter_for(settings), cache_store_for(settings))

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
        return await redis_roles(self.settings, self.limiter, self._store_check)

    async def redis_check(self) -> health.Check:
        """/health's `redis`: the limiter's Redis, and the cache's when it is down too. Down
        while failing closed (RATE_LIMIT_FAIL_OPEN=false), the service is unhealthy."""
        ok, detail = await self.limiter.check_backend()
        cache = await self._store_check()
        if cache is not None and self.settings.redis_url and not cache[0]:
            ok, detail = False, f"{detail}; {cache[1]}"
        return health.Check(ok, detail, critical=not self.settings.rate_limit_fail_open)

    async def aclose(self) -> None:
        """Close the Redis clients, from the event loop that used them."""
        await self.limiter.aclose()
        if self.store is not None:
            await self.store.aclose()

    async def _store_check(self) -> tuple[bool, str] | None:
        return await self.store.check() if self.store is not None else None
