"""Guarding request bodies: their size, and the pace at which they arrive.

Size: a declared `Content-Length` over MAX_CONTENT_LENGTH is answered at once; a body without
one (chunked) is counted as it streams, and the read that crosses the limit raises
`PayloadTooLarge`.

Pace: a body must arrive within BODY_TIMEOUT_S, and, once its first seconds are past, at no
less than BODY_MIN_BYTES_PER_S on average. A slower one raises `RequestTimeout` (408) and the
connection is closed: a client trickling bytes holds a connection, never a processing slot
(the application admits work only once the body is in).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.errors import PayloadTooLarge, RequestTimeout
from gateway.errors import send_error

# The average rate is judged only after this long: connection set-up and TCP slow start.
RATE_GRACE_S = 5.0


class BodyGuard:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        timeout_s: float = 60.0,
        min_bytes_per_s: int = 0,
        grace_s: float = RATE_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.min_bytes_per_s = min_bytes_per_s
        self.grace_s = grace_s
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await send_error(scope, send, self._too_large(declared))
            return
        await self.app(scope, self._guarded(receive), send)

    def _guarded(self, receive: Receive) -> Receive:
        started = self.clock()
        received = 0

        async def guarded() -> Message:
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), self._time_left(started, received))
            except TimeoutError:
                raise self._too_slow(received) from None
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise self._too_large(received)
            if message.get("more_body") and self._time_left(started, received) <= 0:
                raise self._too_slow(received)
            return message

        return guarded

    def _time_left(self, started: float, received: int) -> float:
        """Seconds until the body is too late: the overall deadline, or the moment the
        average rate so far would drop below the minimum."""
        deadline = started + self.timeout_s
        if self.min_bytes_per_s > 0:
            deadline = min(deadline, started + max(self.grace_s, received / self.min_bytes_per_s))
        return deadline - self.clock()

    def _too_large(self, size: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"Request body of {size} bytes exceeds the {self.max_bytes} limit")

    def _too_slow(self, received: int) -> RequestTimeout:
        return RequestTimeout(
            f"The request body arrived too slowly ({received} bytes so far); it must arrive "
            f"within {self.timeout_s:g} s and at {self.min_bytes_per_s} bytes/s or faster",
            headers={"Connection": "close"},
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
