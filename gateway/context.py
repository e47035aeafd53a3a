"""What the HTTP edge learns about one request and hands on, in one typed object.

The middlewares and the routes share it through the ASGI scope, under one key: the outermost
middleware of the service (`ResponseHeaders`) makes it, so that every layer inside, BentoML's
included, holds the same object even where a layer passes a copy of the scope on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope

SCOPE_KEY = "bg_remover.context"


@dataclass
class RequestContext:
    request_id: str = "-"  # RequestObserver: sent back as X-Request-ID, on the log line
    # BoundedPath -> RestorePath: the real path while BentoML's layers see its label
    real_path: str | None = None
    client_address: str | None = None  # ClientIdentity: the peer, or a trusted proxy's hop
    client: str | None = None  # ClientIdentity: the key of the client's budgets and cache
    loadtest: bool = False  # ClientIdentity: a LOADTEST_KEYS key (budgets at their own limit)
    # Added to the response whatever its outcome (the rate-limit headers, once checked).
    response_headers: dict[str, str] = field(default_factory=dict)
    log: dict[str, Any] = field(default_factory=dict)  # this request's fields on its log line

    @classmethod
    def of(cls, scope: Scope) -> RequestContext:
        """The request's context, made on first use."""
        context = scope.get(SCOPE_KEY)
        if context is None:
            context = scope[SCOPE_KEY] = cls()
        return context
