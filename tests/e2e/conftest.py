from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import BentoServer, Connect, fresh_address


@pytest.fixture(scope="session")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("served")


@pytest.fixture(scope="session")
def server(server_dir: Path) -> Iterator[BentoServer]:
    """One real `bentoml serve` with default settings (limits raised) for the whole session."""
    with BentoServer(server_dir) as running:
        yield running


@pytest.fixture(scope="session")
def client(server: BentoServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


@pytest.fixture(scope="session")
def upload_dir(server: BentoServer) -> Path:
    return Path(server.env["UPLOAD_DIR"])


@pytest.fixture
def connect() -> Iterator[Connect]:
    """`connect(server, address=None)`: a client speaking from `address`, by default a
    loopback address no other test used (so a fresh budget)."""
    opened: list[httpx.Client] = []

    def open_client(server: BentoServer, address: str | None = None) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=address or fresh_address())
        client = httpx.Client(base_url=server.url, timeout=120, transport=transport)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()
