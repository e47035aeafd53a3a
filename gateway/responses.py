"""Answering from middleware, before the application has seen the request."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import Scope, Send

from contract.errors import ServiceError


def error_response(error: ServiceError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def send_error(scope: Scope, send: Send, error: ServiceError) -> None:
    response = error_response(error)
    await response(scope, _no_body, send)


async def _no_body() -> dict[str, object]:
    return {"type": "http.disconnect"}
