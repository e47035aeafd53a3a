"""Per-client rate limiting for the background-removal service.

Framework-free: the HTTP layer derives the client with ``client_address`` /
``client_key``, calls ``RateLimiter.hit`` and turns ``RateLimitStatus.headers()``
and the exceptions into responses.
"""

from .identity import IPNetwork, client_address, client_key, parse_networks, short_hash
from .limiter import LOADTEST_CLIENT, RateLimiter
from .status import RateLimitExceeded, RateLimitStatus, RedisUnavailable

__all__ = [
    "LOADTEST_CLIENT",
    "IPNetwork",
    "RateLimitExceeded",
    "RateLimitStatus",
    "RateLimiter",
    "RedisUnavailable",
    "client_address",
    "client_key",
    "parse_networks",
    "short_hash",
]
