"""The one place that decides how a failure reaches the client: its HTTP status, and its JSON
body in the shape of the API that was called (the contract's object, or remove.bg's
`{"errors": [...]}` under its API, `contract.routes.in_removebg_api`).

Only the contract's errors (`contract.errors`) reach here as such: the application layer turns
its domain's failures into them; anything else is the edge's own (a malformed request, a bare
status) or a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.types import Scope, Send

from contract import errors, routes
from gateway.observe import note_shed
from gateway.removebg_errors import removebg_body, removebg_code

log = logging.getLogger("bg_remover.errors")

STATUS = {
    errors.InvalidParameter: 400,
    errors.InvalidImage: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.MethodNotAllowed: 405,
    errors.RequestTimeout: 408,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.RateLimited: 429,
    errors.Overloaded: 503,
    errors.Unavailable: 503,
    errors.ProcessingTimeout: 504,
}
INTERNAL = 500
# Recorded (metrics, log) for a request whose client went away: nginx's convention. The
# client never sees it.
CLIENT_CLOSED_REQUEST = 499


class SafeJSONResponse(JSONResponse):
    """JSON whose strings may hold anything a client sent: a lone surrogate is written as
    its JSON escape instead of failing to encode."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def status_of(error: errors.ServiceError) -> int:
    kind = next((kind for kind in type(error).__mro__ if kind in STATUS), None)
    return INTERNAL if kind is None else STATUS[kind]


def error_for_status(
    status: int, details: str, headers: dict[str, str] | None = None
) -> errors.ServiceError:
    """The error answering with `status`, for failures that arrive as a bare status."""
    kind = next((kind for kind, known in STATUS.items() if known == status), errors.ServiceError)
    return kind(details, headers=headers)


def as_service_error(error: Exception, path: str) -> errors.ServiceError:
    if isinstance(error, errors.ServiceError):
        return error
    if isinstance(error, RequestValidationError):
        fields = sorted({".".join(map(str, e["loc"][1:])) or "body" for e in error.errors()})
        return errors.InvalidParameter(f"Malformed request: check {', '.join(fields)}")
    if isinstance(error, HTTPException):
        # FastAPI wraps failures while reading the body (such as our 413) in a 400.
        if isinstance(error.__cause__, errors.ServiceError):
            return error.__cause__
        if error.status_code == 400:
            return errors.InvalidParameter(f"Malformed request: {error.detail}")
        return error_for_status(
            error.status_code, f"{error.detail}: {path}", headers=dict(error.headers or {})
        )
    log.error("unexpected error on %r", path[:200], exc_info=error)
    return errors.ServiceError("An unexpected error occurred; it has been logged")


def error_response(error: errors.ServiceError, path: str = "/") -> JSONResponse:
    """The error's JSON. After a 500 the connection is closed, and the client is told so
    (`Connection: close`) rather than finding out on its next request."""
    status, body = status_of(error), error.body()
    if routes.in_removebg_api(path):
        status, code = removebg_code(error) or (status, error.code)
        body = removebg_body(error, code)
    headers = {**error.headers, **({"Connection": "close"} if status == INTERNAL else {})}
    return SafeJSONResponse(body, status_code=status, headers=headers)


async def send_error(scope: Scope, send: Send, error: errors.ServiceError) -> None:
    """Answer from middleware, before the application has seen the request."""
    note_shed(scope, error)
    response = error_response(error, scope.get("path", "/"))
    await response(scope, _no_body, send)


async def _no_body() -> dict[str, object]:
    return {"type": "http.disconnect"}


async def _render(request: Request, error: Exception) -> JSONResponse:
    service_error = as_service_error(error, request.url.path)
    note_shed(request.scope, service_error)
    return error_response(service_error, request.url.path)


async def _client_gone(request: Request, error: Exception) -> Response:
    """The client disconnected while sending its body: nobody to answer, nothing to log."""
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientDisconnect, _client_gone)
    handler: Callable = _render
    for kind in (
        errors.ServiceError,
        RequestValidationError,
        HTTPException,
        Exception,
    ):
        app.add_exception_handler(kind, handler)
