"""How much work one API worker takes on at once.

Both limits apply once a request's body has arrived, so a slow upload holds neither:
- requests in flight (MAX_CONCURRENCY): past it, 503 `overloaded` at once;
- memory: each image is admitted by the bytes its processing will need at its peak
  (`optimizer.memory`, measured) against the worker's budget. Work that does not fit waits up
  to MEMORY_WAIT_S for room, then gets 503 `overloaded` with Retry-After; an image that could
  never fit is 413. The files of a batch wait as long as the request may last: its client
  waits for the whole batch anyway.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from contract import headers
from contract.errors import SHED_MEMORY, Overloaded, PayloadTooLarge
from operations.metrics import ADMITTED_MEMORY, REQUESTS_IN_FLIGHT
from operations.resources import container_memory_limit, trim_free_heap
from settings import Settings

MIB = 1024 * 1024
DEFAULT_BUDGET_MB = 1024  # no memory limit to derive it from
# What the rest of a pod needs besides admitted images: the idle API worker, the model
# worker with its onnxruntime arena, BentoML's arbiter (docs/operations.md, "Memory").
POD_RESERVE_MB = 1024
MIN_BUDGET_MB = 256
REQUESTS_RETRY_AFTER_S = 2
# Work this large has its freed heap pages returned before its memory is admitted to others.
TRIM_ABOVE_BYTES = 64 * MIB


def memory_budget_bytes(settings: Settings, limit: int | None = None) -> int:
    """MEMORY_BUDGET_MB, else the container's limit less what the rest of the pod needs."""
    if settings.memory_budget_mb is not None:
        return settings.memory_budget_mb * MIB
    limit = container_memory_limit() if limit is None else limit
    if limit is None:
        return DEFAULT_BUDGET_MB * MIB
    return max(MIN_BUDGET_MB * MIB, limit - POD_RESERVE_MB * MIB)


class Admission:
    def __init__(self, max_requests: int, memory_budget: int, wait_s: float) -> None:
        self.max_requests = max_requests
        self.memory_budget = memory_budget
        self.wait_s = wait_s
        self.in_flight = 0
        self.memory_in_use = 0
        self._room = asyncio.Condition()

    @contextmanager
    def request(self) -> Iterator[None]:
        if self.in_flight >= self.max_requests:
            raise Overloaded(
                f"More than {self.max_requests} requests in flight",
                headers={headers.RETRY_AFTER: str(REQUESTS_RETRY_AFTER_S)},
            )
        self.in_flight += 1
        REQUESTS_IN_FLIGHT.inc()
        try:
            yield
        finally:
            self.in_flight -= 1
            REQUESTS_IN_FLIGHT.dec()

    @asynccontextmanager
    async def memory(self, needed: int, wait_s: float | None = None) -> AsyncIterator[None]:
        """Room for `needed` bytes, waited for up to `wait_s` (MEMORY_WAIT_S by default)."""
        wait_s = self.wait_s if wait_s is None else wait_s
        if needed > self.memory_budget:
            raise PayloadTooLarge(
                f"Processing this image needs about {needed // MIB} MiB; this server takes on "
                f"at most {self.memory_budget // MIB} MiB at once. Send fewer pixels."
            )
        async with self._room:
            try:
                await asyncio.wait_for(self._room.wait_for(lambda: self._fits(needed)), wait_s)
            except TimeoutError:
                retry_after = str(max(1, math.ceil(self.wait_s)))
                raise Overloaded(
                    "Not enough memory free for this image right now",
                    headers={headers.RETRY_AFTER: retry_after},
                    shed_reason=SHED_MEMORY,
                ) from None
            self._take(needed)
        try:
            yield
        finally:
            try:
                if needed >= TRIM_ABOVE_BYTES:  # what it freed stays resident until trimmed
                    await asyncio.to_thread(trim_free_heap)
            finally:
                async with self._room:
                    self._take(-needed)
                    self._room.notify_all()

    def _fits(self, needed: int) -> bool:
        return self.memory_in_use + needed <= self.memory_budget

    def _take(self, amount: int) -> None:
        self.memory_in_use += amount
        ADMITTED_MEMORY.inc(amount)
