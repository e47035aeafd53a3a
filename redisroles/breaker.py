"""The outage policy of one role's Redis, the same for budgets and for the cache.

- Every call has a deadline, so no request waits on a dead or hung Redis for longer than that.
- A failed call opens the breaker: for `retry_interval` seconds calls fail at once (RedisDown)
  without touching Redis; then exactly one call probes it (the others keep failing fast), and
  an answer closes the breaker again. A health check always tries Redis.
- One warning per outage and one line when Redis answers again, both naming the role and
  what the service does meanwhile; `on_change(up)` on every transition (for a gauge).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger("bg_remover.redis")
T = TypeVar("T")


class RedisDown(Exception):
    """The role's Redis failed this call, or is skipped during an outage."""


class Breaker:
    def __init__(
        self,
        role: str,
        *,
        deadline: float,
        retry_interval: float,
        meanwhile: str,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        """`meanwhile` says what the service does during an outage, for the log."""
        self.role = role
        self.deadline = deadline
        self.retry_interval = retry_interval
        self.meanwhile = meanwhile
        self.clock = clock
        self.on_change = on_change
        self.last_error = ""
        self._next_probe: float | None = None  # set while Redis is considered down

    @property
    def up(self) -> bool:
        return self._next_probe is None

    async def call(self, operation: Callable[[], Awaitable[T]], probe: bool = False) -> T:
        """`operation`'s answer within the deadline, or RedisDown. With `probe`, Redis is
        tried even during an outage (a health check)."""
        if not probe and not self._admits():
            raise RedisDown(self.last_error)
        try:
            async with asyncio.timeout(self.deadline):
                answer = await operation()
        except Exception as exc:  # refused, timed out, protocol, OOM, "Event loop is closed"...
            self._mark_down(_describe(exc))
            raise RedisDown(self.last_error) from exc
        self._mark_up()
        return answer

    def _admits(self) -> bool:
        if self._next_probe is None:
            return True
        if self.clock() < self._next_probe:
            return False
        # This call probes; push the next probe so that concurrent calls do not.
        self._next_probe = self.clock() + self.retry_interval
        return True

    def _mark_down(self, reason: str) -> None:
        self.last_error = reason
        if self._next_probe is None:
            log.warning(
                "Redis for %s unreachable (%s); %s until it answers (probing every %g s)",
                self.role,
                reason,
                self.meanwhile,
                self.retry_interval,
            )
            if self.on_change is not None:
                self.on_change(False)
        self._next_probe = self.clock() + self.retry_interval

    def _mark_up(self) -> None:
        if self._next_probe is not None:
            log.info("Redis for %s answers again", self.role)
            self._next_probe = None
            if self.on_change is not None:
                self.on_change(True)


def _describe(exc: BaseException) -> str:
    text = str(exc) or "timed out"
    return f"{type(exc).__name__}: {text}"
