"""Which Redis serves which role, and whether it answers: the state behind
`bg_remover_redis_up{role}`, fed by the limiter's and the cache store's own health checks
(which also move their breakers: a Redis that answers again is used again)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ratelimit import RateLimiter
from settings import Settings

LIMITS = "limits"
CACHE = "cache"


async def redis_roles(
    settings: Settings,
    limiter: RateLimiter,
    cache_check: Callable[[], Awaitable[tuple[bool, str] | None]],
) -> dict[str, bool | None]:
    """Role -> its Redis answers (True/False), or None when the role uses no Redis."""
    limits = cache = None
    if settings.redis_url and settings.rate_limit_enabled:
        limits, _ = await limiter.check_backend()
    if settings.redis_url and settings.cache_enabled:
        checked = await cache_check()
        cache = checked[0] if checked is not None else None
    return {LIMITS: limits, CACHE: cache}
