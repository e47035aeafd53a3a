"""The request's context (gateway/context.py) through the service's own middleware, driven as
ASGI calls without a server: what each layer learns reaches the app, what the app asks for
reaches the response, also across a layer that passes a copy of the scope on (as BentoML's
may)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api import inner_middleware, outer_middleware, wrapped
from gateway.context import RequestContext
from settings import Settings

Seen = dict[str, Any]


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def inner_app(seen: Seen) -> ASGIApp:
    """Records the context as a route would see it, and asks for a header and a log field."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        context = RequestContext.of(scope)
        seen.update(path=scope["path"], context=context)
        context.response_headers["X-RateLimit-Remaining"] = "7"
        context.log["stage"] = "done"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def copies_the_scope(app: ASGIApp) -> ASGIApp:
    async def layer(scope: Scope, receive: Receive, send: Send) -> None:
        await app(dict(scope), receive, send)

    return layer


def call(app: ASGIApp, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("203.0.113.9", 50000),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async def request() -> None:
        await app(scope, receive, send)

    asyncio.run(request())
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


def stack(seen: Seen, **values: Any) -> ASGIApp:
    configured = settings(**values)
    inner = wrapped(inner_app(seen), inner_middleware(configured))
    return wrapped(copies_the_scope(inner), outer_middleware(configured))


def test_what_the_middleware_learns_reaches_the_app_and_back() -> None:
    seen: Seen = {}
    status, headers = call(stack(seen), "/remove-background", {"X-Request-ID": "abc-1"})
    context = seen["context"]
    assert status == 200 and seen["path"] == "/remove-background"  # the real path, restored
    assert (context.request_id, context.client_address) == ("abc-1", "203.0.113.9")
    assert context.client == "ip:203.0.113.9" and context.loadtest is False
    assert headers["x-ratelimit-remaining"] == "7"  # asked for by the app, sent by the edge
    assert headers["x-request-id"] == "abc-1" and headers["x-frame-options"] == "DENY"


def test_a_load_test_key_is_noted_and_keeps_its_budgets_apart() -> None:
    seen: Seen = {}
    values = {"api_keys": "customer", "loadtest_keys": "load"}
    status, _ = call(stack(seen, **values), "/remove-background", {"X-API-Key": "load"})
    assert status == 200 and seen["context"].loadtest is True
    assert seen["context"].client.startswith("loadtest:")
    other: Seen = {}
    call(stack(other, **values), "/remove-background", {"X-API-Key": "customer"})
    assert other["context"].loadtest is False and other["context"].client.startswith("key:")


def test_a_refused_key_never_reaches_the_app() -> None:
    seen: Seen = {}
    status, headers = call(stack(seen, api_keys="customer"), "/remove-background", {})
    assert status == 401 and seen == {}
    assert headers["content-type"] == "application/json" and "x-request-id" in headers


def test_the_context_is_made_once_per_request() -> None:
    scope: Scope = {}
    assert RequestContext.of(scope) is RequestContext.of(scope)
    assert RequestContext.of({}) is not RequestContext.of(scope)
