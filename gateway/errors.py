"""Every failure as the contract's JSON error: one handler set for the FastAPI app."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from contract.errors import InvalidParameter, NotFound, ServiceError
from gateway.responses import error_response

log = logging.getLogger("bg_remover.errors")


async def service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    return error_response(error)


async def unparseable_request(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    fields = sorted({".".join(map(str, e["loc"][1:])) or "body" for e in error.errors()})
    return error_response(InvalidParameter(f"Malformed request: check {', '.join(fields)}"))


async def http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    # FastAPI wraps failures while reading the body (such as our 413) in a 400 HTTPException.
    if isinstance(error.__cause__, ServiceError):
        return error_response(error.__cause__)
    if error.status_code == 404:
        return error_response(NotFound(f"No route {request.url.path}"))
    return error_response(InvalidParameter(f"Malformed request: {error.detail}"))


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.url.path, exc_info=error)
    return error_response(ServiceError("An unexpected error occurred; it has been logged"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, unparseable_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
