"""Integration fixtures: redis-servers of the tests' own, an event loop per test, the API.

Every Redis here is a redis-server this session started on a free port (tests/redis_server.py):
the one `shared_redis` fixture shares between tests (each test under its own key prefix), one
per module, and killable ones for outages. Nothing assumes a server that is already running.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.integration.api_server import InProcessServer
from tests.redis_server import RedisServer, running_redis

Run = Callable[[Awaitable[Any]], Any]


def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def session_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session, shared by many tests (never stopped)."""
    yield from _server(tmp_path_factory)


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server shared by one module's tests (each uses its own prefix)."""
    yield from _server(tmp_path_factory)


@pytest.fixture
def killable_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for one test, which may stop and restart it."""
    yield from _server(tmp_path_factory)


@pytest.fixture
def key_prefix() -> str:
    return f"test-ratelimit-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def shared_redis(session_redis: RedisServer, key_prefix: str) -> Iterator[str]:
    """URL of the session's shared Redis; the test must use ``key_prefix``, whose keys are
    deleted afterwards (never FLUSHALL: other tests use this server)."""
    yield session_redis.url
    client = redis.Redis.from_url(session_redis.url)
    try:
        keys = list(client.scan_iter(match=f"{key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def run() -> Iterator[Run]:
    """Runs coroutines on one event loop for the whole test: redis-py's connections belong
    to the loop that opened them, and must be closed on it before it closes."""
    with asyncio.Runner() as runner:
        yield runner.run


@pytest.fixture(scope="session")
def server(server_dir: Path) -> Iterator[InProcessServer]:
    """The whole HTTP API in this process with default settings (limits raised)."""
    with InProcessServer(server_dir) as running:
        yield running
