"""The API's link to a model service of its own (gateway/model_link.py), against a real HTTP
server in this process: a connection renewed while a call runs on it, and the start-up check.
The same with real BentoML services: tests/e2e/test_model_pool.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from _bentoml_impl.client.proxy2 import SessionManager
from aiohttp import web

from gateway.model_link import (
    ModelServiceMissing,
    RecycledSessions,
    recycle_connections,
    require_model_service,
)
from tests.serving import free_port


@asynccontextmanager
async def slow_server(arrived: asyncio.Event, release: asyncio.Event) -> AsyncIterator[str]:
    """Answers /slow once `release` is set, after saying that the call `arrived`."""

    async def slow(_: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Client:
    """What `recycle_connections` expects: a BentoML client holding a session manager."""

    def __init__(self, url: str) -> None:
        self._session_manager = SessionManager(url, timeout=30, headers={}, max_age=60)


async def renewed_during_a_call(graceful: bool) -> str:
    """Start a call, renew the connection while it runs, then finish the call."""
    arrived, release = asyncio.Event(), asyncio.Event()
    async with slow_server(arrived, release) as url:
        client = Client(url)
        if graceful:
            recycle_connections(client)
        manager = client._session_manager
        first = await manager.get_session()
        call = asyncio.create_task(first.get("/slow"))
        await arrived.wait()
        manager._created_at -= 61  # the session is now older than max_age
        second = await manager.get_session()
        assert second is not first
        release.set()
        try:
            answer = await call
            return await answer.text()
        except aiohttp.ClientError as error:
            return type(error).__name__
        finally:
            await manager.close()
            assert first.closed and second.closed  # nothing left open at shutdown


def test_bentomls_renewal_fails_the_call_running_on_the_old_connection() -> None:
    """Why RecycledSessions exists: the stock manager closes the old session at once."""
    assert asyncio.run(renewed_during_a_call(graceful=False)) != "done"


def test_graceful_renewal_lets_the_running_call_finish() -> None:
    assert asyncio.run(renewed_during_a_call(graceful=True)) == "done"


def test_recycled_sessions_are_bentomls_manager() -> None:
    client = Client("http://127.0.0.1:1")
    recycle_connections(client)
    assert isinstance(client._session_manager, RecycledSessions)
    assert isinstance(client._session_manager, SessionManager)


def test_no_address_refuses_to_start() -> None:
    with pytest.raises(ModelServiceMissing, match="No address for the model service 'segmenter'"):
        require_model_service("segmenter", None, wait_s=0)


def test_no_address_is_allowed_in_development_mode() -> None:
    require_model_service("segmenter", None, wait_s=0, in_process_allowed=True)


def test_the_unix_socket_of_one_pod_is_not_waited_for() -> None:
    require_model_service("segmenter", "file:///tmp/bentoml-uds-x/1.sock", wait_s=0)


def test_an_address_that_does_not_answer_refuses_to_start() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ModelServiceMissing, match=f"at {url} did not answer within 0.5 s"):
        require_model_service("segmenter", url, wait_s=0.5)
