"""Refuse bodies over MAX_CONTENT_LENGTH without reading them.

A declared `Content-Length` over the limit is answered at once. A body without one (chunked)
is counted as it streams, and the read that crosses the limit raises `PayloadTooLarge`,
which the application's error handler turns into the contract's 413.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.errors import PayloadTooLarge
from gateway.errors import send_error


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await send_error(scope, send, self._too_large(declared))
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise self._too_large(received)
            return message

        return counted

    def _too_large(self, size: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"Request body of {size} bytes exceeds the {self.max_bytes} limit")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
