"""Redis fixtures: a private, killable redis-server and the shared one on 6379.

The shared Redis is never stopped or flushed: each test gets its own key prefix
and deletes only its own keys afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.api_server import InProcessServer
from tests.redis_server import RedisServer, running_redis
from tests.redis_server import answers as _answers

SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"


def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


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
def shared_redis(key_prefix: str) -> Iterator[str]:
    """URL of the shared Redis; the test must use ``key_prefix``, whose keys are
    deleted afterwards (never FLUSHALL: other people use this server)."""
    if not _answers(SHARED_REDIS_URL):
        pytest.skip("shared Redis on 127.0.0.1:6379 is not reachable")
    yield SHARED_REDIS_URL
    client = redis.Redis.from_url(SHARED_REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="session")
def server(server_dir: Path) -> Iterator[InProcessServer]:
    """The whole HTTP API in this process with default settings (limits raised)."""
    with InProcessServer(server_dir) as running:
        yield running
