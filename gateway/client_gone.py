"""Work for a client that is gone is stopped.

Once a request's body has arrived, nothing more comes from its client but a disconnect. While
the handler works, this middleware listens for it: a client that leaves before its answer is
complete gets its handler cancelled (and with it the request's image work, see
`application.image_work`), and the request is recorded with status 499, which no one
receives. A client that leaves while still sending its body ends the same way: Starlette
raises ClientDisconnect, which `gateway.errors` answers with 499. Neither is an error of the
service: no 500, no traceback.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import CLIENT_CLOSED_REQUEST


class ClientGone:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watch = _Watch(receive, send)
        handler = asyncio.ensure_future(self.app(scope, watch.receive, watch.send))
        watch.handler = handler
        try:
            await handler
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not watch.left or (current is not None and current.cancelling()):
                raise  # cancelled from outside (the request timed out): not ours to handle
            await watch.record_departure()
        finally:
            watch.stop()


class _Watch:
    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.handler: asyncio.Future[None] | None = None
        self.left = False  # the client disconnected before its answer was complete
        self._started = self._answered = False
        self._listener: asyncio.Task[Message] | None = None

    async def receive(self) -> Message:
        if self._listener is not None:  # the body is in: only a disconnect can come
            return await asyncio.shield(self._listener)
        message = await self._receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            self._listener = asyncio.ensure_future(self._listen())
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._started = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self._answered = True
        await self._send(message)

    async def record_departure(self) -> None:
        """Answer 499 for the metrics and the log (the server drops it: no one is there)."""
        if not self._started:
            await self._send(
                {"type": "http.response.start", "status": CLIENT_CLOSED_REQUEST, "headers": []}
            )
            await self._send({"type": "http.response.body", "body": b""})

    def stop(self) -> None:
        if self._listener is not None and not self._listener.done():
            self._listener.cancel()

    async def _listen(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect" and not self._answered:
            self.left = True
            if self.handler is not None:
                self.handler.cancel()
        return message
