"""One log line and the request metrics for every request, with a request id.

Handlers add what only they know (sizes, stage timings) to the request context's `log`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract import headers, routes
from contract.errors import SHED_REASONS, SHED_UNAVAILABLE, ServiceError
from gateway.clients import short_hash
from gateway.context import RequestContext
from operations.logs import log_request
from operations.metrics import REQUEST_DURATION, REQUESTS, SHED

UNLISTED_ENDPOINT = "other"  # keeps label cardinality bounded whatever paths clients try
# The kubelet's probes and Prometheus' scrapes are counted apart, so they never dilute the
# error ratio of `other` (or of anything else); they are not logged.
PROBE_ENDPOINT = "probe"
SCRAPE_ENDPOINT = "scrape"
QUIET_ENDPOINTS = {
    **dict.fromkeys(routes.PROBES, PROBE_ENDPOINT),
    routes.METRICS: SCRAPE_ENDPOINT,
}
# An id from upstream (the ingress controller's, a proxy's or the client's) is kept when it is
# short and plain, so one id follows a request through every log; anything else is replaced.
UPSTREAM_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def note_shed(scope: Scope, error: ServiceError) -> None:
    """Why an error sheds this request (503), for its log line and `bg_remover_shed_total`."""
    if error.shed_reason is not None:
        RequestContext.of(scope).log["shed"] = error.shed_reason


def request_id_of(scope: Scope) -> str:
    """The upstream `X-Request-ID` when it is acceptable, else a new random id."""
    upstream = Headers(scope=scope).get(headers.REQUEST_ID, "")
    if UPSTREAM_REQUEST_ID.fullmatch(upstream):
        return upstream
    return uuid.uuid4().hex[:16]


class RequestObserver:
    def __init__(self, app: ASGIApp, endpoints: Iterable[str]) -> None:
        self.app = app
        self.endpoints = frozenset(endpoints)
        for reason in SHED_REASONS:  # at 0 from the start, so rate() sees the first one
            SHED.labels(reason=reason)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        context = RequestContext.of(scope)
        context.request_id = request_id = request_id_of(scope)
        path = scope["path"]
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[headers.REQUEST_ID] = request_id
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            self._record(scope["method"], path, context, status, time.perf_counter() - started)

    def endpoint_of(self, path: str) -> str:
        if path in self.endpoints:
            return path
        return QUIET_ENDPOINTS.get(path, UNLISTED_ENDPOINT)

    def _record(
        self, method: str, path: str, context: RequestContext, status: int, seconds: float
    ) -> None:
        endpoint = self.endpoint_of(path)
        REQUESTS.labels(endpoint=endpoint, status=str(status)).inc()
        REQUEST_DURATION.labels(endpoint=endpoint).observe(seconds)
        if path in QUIET_ENDPOINTS:
            return
        fields = context.log
        if status == 503 and path != routes.HEALTH:  # /health's 503 reports, it sheds nothing
            SHED.labels(reason=fields.setdefault("shed", SHED_UNAVAILABLE)).inc()
        log_request(
            {
                "request_id": context.request_id,
                "method": method,
                "endpoint": endpoint,
                "client": short_hash(context.client) if context.client else None,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
                **fields,
            }
        )
