"""Errors as JSON responses, in the shape the requested API speaks: the contract's object,
or remove.bg's `{"errors": [...]}` under its `/v1.0/` routes. The one place that decides."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract import removebg
from contract.errors import ServiceError, error_for_status

REMOVEBG_PREFIX = "/v1.0/"


def error_response(error: ServiceError, path: str = "/") -> JSONResponse:
    body = removebg.error_body(error) if path.startswith(REMOVEBG_PREFIX) else error.body()
    return JSONResponse(body, status_code=error.status, headers=error.headers)


async def send_error(scope: Scope, send: Send, error: ServiceError) -> None:
    """Answer from middleware, before the application has seen the request."""
    response = error_response(error, scope.get("path", "/"))
    await response(scope, _no_body, send)


async def _no_body() -> dict[str, object]:
    return {"type": "http.disconnect"}


class JsonErrors:
    """Error responses that BentoML or Starlette wrote as plain text (an unknown path, a wrong
    method, a refused CORS preflight, /readyz before the model) become the JSON error of their
    status, keeping the status and the headers that matter (Allow, Retry-After)."""

    KEPT_HEADERS = ("allow", "retry-after")

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
                headers = Headers(raw=message["headers"])
                kept = {name: headers[name] for name in self.KEPT_HEADERS if name in headers}
                error = error_for_status(message["status"], f"{scope['path']}", kept)
                response = error_response(error, scope["path"])
                response.status_code = message["status"]
                await response(scope, receive, send)
            elif not replaced:
                await send(message)

        await self.app(scope, receive, json_send)

    @staticmethod
    def _plain_error(message: Message) -> bool:
        content_type = Headers(raw=message["headers"]).get("content-type", "")
        return message["status"] >= 400 and not content_type.startswith("application/json")
