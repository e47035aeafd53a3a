"""Who is calling: the API key check (401; 403 under remove.bg's API, `gateway/errors.py`),
and the client's address and key in the request's context (`gateway.clients` decides both).
Under remove.bg's API the key may also come as `Authorization: Bearer <key>`, as remove.bg's
clients send it.

uvicorn's own proxy-header handling is switched off by the service (FORWARDED_ALLOW_IPS=""),
so `scope["client"]` here is the real peer.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from contract import headers, routes
from contract.errors import Unauthorized
from gateway.clients import client_address, client_key, loadtest_client_key
from gateway.context import RequestContext
from gateway.errors import send_error
from settings import IPNetwork

BEARER = "bearer"


class ClientIdentity:
    def __init__(
        self,
        app: ASGIApp,
        api_keys: Iterable[str],
        trusted_proxies: Sequence[IPNetwork],
        open_paths: Iterable[str],
        open_prefixes: Iterable[str] = (),
        ipv6_prefix: int = 64,
        loadtest_keys: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.ipv6_prefix = ipv6_prefix
        self.api_keys = [key.encode() for key in api_keys]
        self.loadtest_keys = [key.encode() for key in loadtest_keys]
        self.trusted_proxies = trusted_proxies
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = tuple(open_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        peer = scope["client"][0] if scope.get("client") else None
        forwarded = ",".join(request_headers.getlist(headers.FORWARDED_FOR)) or None
        context = RequestContext.of(scope)
        context.client_address = address = client_address(peer, forwarded, self.trusted_proxies)
        key = request_headers.get(headers.API_KEY) or self._bearer(scope, request_headers)
        context.loadtest = loadtest = self._valid(key, self.loadtest_keys)
        if self.api_keys and not self._is_open(scope) and not (loadtest or self._valid(key)):
            message = "Missing API key" if not key else "Invalid API key"
            await send_error(scope, send, Unauthorized(message))
            return
        context.client = (
            loadtest_client_key(key)
            if key and loadtest
            else client_key(key if self.api_keys else None, address, self.ipv6_prefix)
        )
        await self.app(scope, receive, send)

    @staticmethod
    def _bearer(scope: Scope, request_headers: Headers) -> str | None:
        """The token of `Authorization: Bearer <token>` on remove.bg's API."""
        if not routes.in_removebg_api(scope["path"]):
            return None
        scheme, _, token = request_headers.get(headers.AUTHORIZATION, "").partition(" ")
        return token.strip() or None if scheme.lower() == BEARER else None

    def _is_open(self, scope: Scope) -> bool:
        path = scope["path"]
        return (
            scope["method"] == "OPTIONS"
            or path in self.open_paths
            or path.startswith(self.open_prefixes)
        )

    def _valid(self, key: str | None, known_keys: list[bytes] | None = None) -> bool:
        if not key:
            return False
        candidate = key.encode()
        # Compare with every key so the time taken does not tell which one nearly matched.
        keys = self.api_keys if known_keys is None else known_keys
        matches = [hmac.compare_digest(candidate, known) for known in keys]
        return any(matches)
