"""`/metrics` only for METRICS_ALLOW networks (by the client address ClientIdentity found)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from contract import routes
from contract.errors import Forbidden
from gateway.context import RequestContext
from gateway.errors import send_error
from settings import IPNetwork


class MetricsAccess:
    def __init__(self, app: ASGIApp, allow: Sequence[IPNetwork]) -> None:
        self.app = app
        self.allow = allow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].rstrip("/") == routes.METRICS
            and not self._allowed(RequestContext.of(scope).client_address)
        ):
            await send_error(scope, send, Forbidden("Metrics are not served to this network"))
            return
        await self.app(scope, receive, send)

    def _allowed(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.allow)
