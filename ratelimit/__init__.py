"""Per-client rate limiting for the background-removal service, on `limits`.

Framework-free, and free of the rest of the project: the limiter (budgets per endpoint), its
storage (Redis, with an in-process fallback during outages), the strategy and the status of a
budget. Who the client is, and how a status becomes HTTP headers, is decided by the callers.
"""

from .limiter import RateLimiter
from .status import RateLimitExceeded, RateLimitStatus, RedisUnavailable

__all__ = [
    "RateLimitExceeded",
    "RateLimitStatus",
    "RateLimiter",
    "RedisUnavailable",
]
