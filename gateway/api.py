"""The HTTP edge assembled: the FastAPI app with the routes, and the middleware in front.

`service.py` mounts the app on BentoML, adds the inner middleware with BentoML's
`add_asgi_middleware` and wraps the outer middleware around the ASGI app BentoML builds, so
that it sees every response, BentoML's own included; `asgi_app` stacks the same middleware
around the app for an in-process server (tests, benchmarks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from application import Application
from contract import headers, routes
from gateway.body_guard import BodyGuard
from gateway.client_gone import ClientGone
from gateway.edge import BoundedPath, RestorePath
from gateway.errors import install_error_handlers
from gateway.identity import ClientIdentity
from gateway.json_errors import JsonErrors
from gateway.metrics_access import MetricsAccess
from gateway.observe import RequestObserver
from gateway.response_headers import ResponseHeaders
from gateway.routes import router
from settings import Settings

PLAYGROUND_DIR = Path(__file__).resolve().parent.parent / "playground"
Middleware = tuple[type, dict[str, Any]]


def create_api() -> FastAPI:
    """The routes, error handlers and the playground; `state.application` is set later, in
    the process that serves."""
    api = FastAPI(
        title="Background Remover API",
        summary="Cut the subject out of a photo and get it back optimized for the web.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # BentoML serves /docs.json and UI
    )
    install_error_handlers(api)
    api.include_router(router)
    api.mount(
        f"{routes.PLAYGROUND}/", StaticFiles(directory=PLAYGROUND_DIR, html=True), name="playground"
    )
    return api


def outer_middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: what must see every response, BentoML's own included (its 504 after
    REQUEST_TIMEOUT_S): CORS answers preflights before any key is asked for; security headers,
    JSON errors, the request id, metrics and the log line; then the path label BentoML's own
    middleware may see (`gateway.edge`)."""
    stack: list[Middleware] = []
    if settings.cors_origins:
        stack.append(
            (
                CORSMiddleware,
                {
                    "allow_origins": settings.cors_origins,
                    "allow_methods": ["GET", "POST"],
                    "allow_headers": [headers.API_KEY, headers.AUTHORIZATION, "Content-Type"],
                    "expose_headers": list(headers.EXPOSED_HEADERS),
                },
            )
        )
    return [
        *stack,
        (ResponseHeaders, {}),
        (JsonErrors, {}),
        (RequestObserver, {"endpoints": routes.SERVICE}),
        (BoundedPath, {}),
    ]


def inner_middleware(settings: Settings) -> list[Middleware]:
    """Outermost first, inside BentoML's middleware: the real path back; identity before the
    body is read; the body guard watches the body as the routes read it (the application takes
    its concurrency slot only once the body has arrived); a client that leaves afterwards gets
    its work cancelled (`gateway.client_gone`)."""
    return [
        (RestorePath, {}),
        (
            ClientIdentity,
            {
                "api_keys": settings.api_keys,
                "trusted_proxies": settings.trusted_proxies,
                "open_paths": routes.OPEN,
                "open_prefixes": routes.OPEN_PREFIXES,
                "ipv6_prefix": settings.client_ipv6_prefix,
                "loadtest_keys": settings.loadtest_keys,
            },
        ),
        (MetricsAccess, {"allow": settings.metrics_allow}),
        (ClientGone, {}),
        (
            BodyGuard,
            {
                "max_bytes": settings.max_content_length,
                "timeout_s": settings.body_timeout_s,
                "min_bytes_per_s": settings.body_min_bytes_per_s,
            },
        ),
    ]


def wrapped(app: ASGIApp, stack: list[Middleware]) -> ASGIApp:
    for cls, options in reversed(stack):
        app = cls(app, **options)
    return app


def asgi_app(application: Application, settings: Settings) -> ASGIApp:
    """The whole HTTP edge over `application`, without BentoML."""
    api = create_api()
    api.state.application = application
    return wrapped(wrapped(api, inner_middleware(settings)), outer_middleware(settings))
