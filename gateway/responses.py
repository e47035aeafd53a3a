"""Errors as JSON responses, in the shape the requested API speaks: the contract's object,
or remove.bg's `{"errors": [...]}` under its `/v1.0/` routes. The one place that decides."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import Scope, Send

from contract import removebg
from contract.errors import ServiceError

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
