"""Headers added to responses on their way out, whichever route or error produced them: the
security headers on every response, and those the request's context asks for (the rate-limit
headers, once the limit was checked).

The outermost middleware of the service: it makes the request's context (`gateway.context`)
before any other layer sees the request.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.headers import SECURITY_HEADERS
from gateway.context import RequestContext


class ResponseHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext.of(scope)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in {**SECURITY_HEADERS, **context.response_headers}.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)
