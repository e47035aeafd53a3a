from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import BentoServer


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
