from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import BentoServer


@pytest.fixture(scope="session")
def server(server_dir: Path) -> Iterator[BentoServer]:
    """One real `bentoml serve` with default settings (limits raised) for the whole session."""
    with BentoServer(server_dir) as running:
        yield running
