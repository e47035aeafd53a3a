"""Headers added to responses on their way out, whichever route or error produced them:
the security headers on every response, and headers a handler or an earlier middleware left
in `scope["state"]["response_headers"]` (the rate-limit headers, once the limit was checked).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def add_response_headers(scope: Scope, headers: dict[str, str]) -> None:
    """Ask for `headers` on this request's response, whatever the outcome."""
    scope.setdefault("state", {}).setdefault("response_headers", {}).update(headers)


class ResponseHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                extra = scope.get("state", {}).get("response_headers", {})
                for name, value in {**SECURITY_HEADERS, **extra}.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)
