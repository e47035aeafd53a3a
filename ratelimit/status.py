"""What a rate-limit check tells the caller: budget left, reset time, when to retry."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimitStatus:
    """The state of one client's budget on one endpoint, right after a check.

    ``exceeded`` is True when the requested cost did not fit (nothing was spent);
    ``remaining`` is then what is still left, which may be above zero when a batch
    asked for more than that.
    """

    limit: int
    remaining: int
    reset_at: int  # Unix seconds, rounded up: when budget is next given back
    exceeded: bool = False

    def retry_after(self, now: float | None = None) -> int:
        """Whole seconds to wait: at least 1, and ``now + result >= reset_at``."""
        now = time.time() if now is None else now
        return max(1, math.ceil(self.reset_at - now))


class RateLimitExceeded(Exception):
    """The cost did not fit in the budget; nothing was spent. Maps to HTTP 429."""

    def __init__(self, status: RateLimitStatus) -> None:
        super().__init__(
            f"rate limit of {status.limit} exceeded ({status.remaining} left, "
            f"resets at {status.reset_at})"
        )
        self.status = status


class RedisUnavailable(Exception):
    """Redis is down and ``fail_open`` is False: the request cannot be accounted."""
