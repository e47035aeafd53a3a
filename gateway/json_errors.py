"""Error responses that BentoML or Starlette wrote themselves become the contract's JSON error
of their status, keeping the status and the headers that matter (Allow, Retry-After,
X-Request-ID): plain-text ones (an unknown path, a wrong method, a refused CORS preflight,
/readyz before the model), and BentoML's 504 when a request outlives REQUEST_TIMEOUT_S (its
JSON has no `code`; the service itself never answers 504)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract import headers
from gateway.errors import CLIENT_CLOSED_REQUEST, error_for_status, error_response

TIMEOUT = 504
DETAILS = {TIMEOUT: "The request was not answered within the server's request timeout"}


class JsonErrors:
    KEPT_HEADERS = ("allow", headers.RETRY_AFTER.lower(), headers.REQUEST_ID.lower())

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def json_send(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and self._plain_error(message):
                replaced = True
                sent = Headers(raw=message["headers"])
                kept = {name: sent[name] for name in self.KEPT_HEADERS if name in sent}
                status = message["status"]
                error = error_for_status(status, DETAILS.get(status) or scope["path"], kept)
                response = error_response(error, scope["path"])
                response.status_code = message["status"]
                await response(scope, receive, send)
            elif not replaced:
                await send(message)

        await self.app(scope, receive, json_send)

    @staticmethod
    def _plain_error(message: Message) -> bool:
        content_type = Headers(raw=message["headers"]).get("content-type", "")
        status = message["status"]
        if status < 400 or status == CLIENT_CLOSED_REQUEST:  # 499: no one will read it
            return False
        return status == TIMEOUT or not content_type.startswith("application/json")
