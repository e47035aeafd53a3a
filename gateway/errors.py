"""Every failure as a JSON error: one handler set for the FastAPI app.

Each handler only decides which `ServiceError` a failure is; `error_response` renders it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from contract.errors import InvalidParameter, ServiceError, error_for_status
from gateway.responses import error_response

log = logging.getLogger("bg_remover.errors")


def as_service_error(request: Request, error: Exception) -> ServiceError:
    if isinstance(error, ServiceError):
        return error
    if isinstance(error, RequestValidationError):
        fields = sorted({".".join(map(str, e["loc"][1:])) or "body" for e in error.errors()})
        return InvalidParameter(f"Malformed request: check {', '.join(fields)}")
    if isinstance(error, HTTPException):
        # FastAPI wraps failures while reading the body (such as our 413) in a 400.
        if isinstance(error.__cause__, ServiceError):
            return error.__cause__
        if error.status_code == 400:
            return InvalidParameter(f"Malformed request: {error.detail}")
        return error_for_status(error.status_code, f"{error.detail}: {request.url.path}",
                                headers=dict(error.headers or {}))
    log.error("unexpected error on %s", request.url.path, exc_info=error)
    return ServiceError("An unexpected error occurred; it has been logged")


async def _render(request: Request, error: Exception) -> JSONResponse:
    return error_response(as_service_error(request, error), request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    handler: Callable = _render
    for kind in (ServiceError, RequestValidationError, HTTPException, Exception):
        app.add_exception_handler(kind, handler)
