"""One log line and the request metrics for every request, with a request id.

Handlers add what only they know (sizes, stage timings) to `scope["state"]["log"]`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from operations.logs import log_request
from operations.metrics import REQUEST_DURATION, REQUESTS
from ratelimit import short_hash

UNLISTED_ENDPOINT = "other"  # keeps label cardinality bounded whatever paths clients try
QUIET_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})


def request_log(scope: Scope) -> dict[str, object]:
    """The fields of this request's log line; handlers add theirs."""
    return scope.setdefault("state", {}).setdefault("log", {})


class RequestObserver:
    def __init__(self, app: ASGIApp, endpoints: Iterable[str]) -> None:
        self.app = app
        self.endpoints = frozenset(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        path = scope["path"]
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            self._record(scope, path, request_id, status, time.perf_counter() - started)

    def _record(
        self, scope: Scope, path: str, request_id: str, status: int, seconds: float
    ) -> None:
        endpoint = path if path in self.endpoints else UNLISTED_ENDPOINT
        REQUESTS.labels(endpoint=endpoint, status=str(status)).inc()
        REQUEST_DURATION.labels(endpoint=endpoint).observe(seconds)
        if path in QUIET_PATHS:
            return
        state = scope.get("state", {})
        client = state.get("client_key")
        log_request(
            {
                "request_id": request_id,
                "method": scope["method"],
                "endpoint": endpoint,
                "client": short_hash(client) if client else None,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
                **state.get("log", {}),
            }
        )
