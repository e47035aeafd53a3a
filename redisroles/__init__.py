"""Redis for the service's two roles: `limits` (the rate-limit budgets) and `cache` (results).

One client per Redis (`RedisConnection`: one connection pool, or one cluster client), shared
by the roles given the same URL, and one outage `Breaker` per role, so that health, metrics
and logs say which role lost its Redis. Plain servers and Redis Cluster (`redis+cluster://`)
alike. Framework-free: imports nothing from the rest of the project.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from redisroles.address import RedisAddress, parse_url
from redisroles.breaker import Breaker, RedisDown
from redisroles.connection import RedisConnection

LIMITS = "limits"
CACHE = "cache"
# A budget check is two round trips (limits' moving window), each within the socket timeout.
ROUND_TRIPS_PER_CALL = 2


def connect(urls: Mapping[str, str], timeout: float) -> dict[str, RedisConnection]:
    """A connection per role; roles given the same URL share one (and its pool)."""
    opened: dict[str, RedisConnection] = {}
    for url in set(urls.values()):
        opened[url] = RedisConnection(parse_url(url), timeout)
    return {role: opened[url] for role, url in urls.items()}


def breaker_for(
    role: str,
    timeout: float,
    retry_interval: float,
    meanwhile: str,
    on_change: Callable[[bool], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Breaker:
    return Breaker(
        role,
        deadline=ROUND_TRIPS_PER_CALL * timeout,
        retry_interval=retry_interval,
        meanwhile=meanwhile,
        clock=clock,
        on_change=on_change,
    )


__all__ = [
    "CACHE",
    "LIMITS",
    "Breaker",
    "RedisAddress",
    "RedisConnection",
    "RedisDown",
    "breaker_for",
    "connect",
    "parse_url",
]
