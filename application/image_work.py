"""Image work (reading headers, decoding, compositing, encoding) in threads of its own.

Work is never run on the event loop. It gets its own threads rather than asyncio's default
executor, so that it can be watched: `/health` reports the pool as starved (degraded) once
work has waited longer than STARVED_AFTER_S for a thread, and the metrics show busy threads,
waiting work, queue waits and cancelled work.

Work whose request is gone (the client disconnected, or the request timed out and its handler
was cancelled) is stopped: cancelling the awaiting coroutine sets the request's
`Cancellation`, which the decoder's reader and the stage boundaries check (queued work never
starts), so its thread is free again within one block of the file.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from operations.health import Check
from operations.metrics import (
    IMAGE_WORK_BUSY,
    IMAGE_WORK_CANCELLED,
    IMAGE_WORK_WAIT,
    IMAGE_WORK_WAITING,
)
from optimizer.decode import WorkCancelled

T = TypeVar("T")
# As asyncio's default executor: image work releases the GIL in Pillow and numpy.
DEFAULT_THREADS = min(32, (os.cpu_count() or 1) + 4)
STARVED_AFTER_S = 5.0


class Cancellation:
    """Set once the request the work belongs to is gone; called, it tells whether it is."""

    def __init__(self) -> None:
        self._gone = threading.Event()

    def set(self) -> None:
        self._gone.set()

    def __call__(self) -> bool:
        return self._gone.is_set()


class ImageWorkers:
    def __init__(
        self, threads: int = DEFAULT_THREADS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threads = threads
        self.clock = clock
        self.busy = 0
        self._waiting: dict[object, float] = {}  # ticket -> when it was queued
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="image-work")

    async def run(self, cancellation: Cancellation, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in a pool thread; if the caller is cancelled, so is the work."""
        ticket, queued = object(), self.clock()
        with self._lock:
            self._waiting[ticket] = queued
            IMAGE_WORK_WAITING.inc()

        def job() -> T:
            self._start(ticket, queued)
            try:
                if cancellation():
                    raise WorkCancelled()
                return work(*args)
            finally:
                with self._lock:
                    self.busy -= 1
                    IMAGE_WORK_BUSY.dec()

        future = asyncio.get_running_loop().run_in_executor(self._executor, job)
        try:
            return await future
        except asyncio.CancelledError:
            cancellation.set()
            IMAGE_WORK_CANCELLED.inc()
            self._unqueue(ticket)  # work that never started
            raise

    def check(self) -> Check:
        with self._lock:
            busy, waiting = self.busy, len(self._waiting)
            longest = self.clock() - min(self._waiting.values(), default=self.clock())
        detail = f"{busy} of {self.threads} threads busy, {waiting} waiting"
        if longest >= STARVED_AFTER_S:
            return Check(False, f"{detail}; work has waited {longest:.0f} s for a thread")
        return Check(True, detail)

    def _start(self, ticket: object, queued: float) -> None:
        with self._lock:
            if self._waiting.pop(ticket, None) is not None:
                IMAGE_WORK_WAITING.dec()
            self.busy += 1
            IMAGE_WORK_BUSY.inc()
        IMAGE_WORK_WAIT.observe(self.clock() - queued)

    def _unqueue(self, ticket: object) -> None:
        with self._lock:
            if self._waiting.pop(ticket, None) is not None:
                IMAGE_WORK_WAITING.dec()
