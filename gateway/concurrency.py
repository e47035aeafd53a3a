"""At most MAX_CONCURRENCY requests in flight on the processing routes; past that, 503
`overloaded` with Retry-After at once, rather than an unbounded queue in front of the model."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from contract.errors import Overloaded
from gateway.errors import send_error

RETRY_AFTER_SECONDS = 2


class ConcurrencyLimit:
    def __init__(self, app: ASGIApp, limit: int, paths: Iterable[str]) -> None:
        self.app = app
        self.limit = limit
        self.paths = frozenset(paths)
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            error = Overloaded(f"More than {self.limit} requests in flight",
                               headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            await send_error(scope, send, error)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
