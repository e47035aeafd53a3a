"""Shared fixtures: where the real u2netp model files are (tests skip when they are absent)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving import Connect, fresh_address

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

MODEL_NAME = "u2netp"


@pytest.fixture(scope="session")
def stored_model_path() -> Path:
    """u2netp's ONNX file in BentoML's model store (batch axis made dynamic by import_model.py)."""
    import bentoml

    try:
        model = bentoml.models.get(MODEL_NAME)
    except bentoml.exceptions.NotFound:
        pytest.skip(f"model '{MODEL_NAME}' is not in BentoML's store: run import_model.py first")
    path = Path(model.path_of("model.onnx"))
    if not path.is_file():
        pytest.skip(f"the stored model has no model.onnx at {path}")
    return path


@pytest.fixture(scope="session")
def original_model_path() -> Path:
    """rembg's original u2netp.onnx (batch axis fixed at 1) from the rembg cache."""
    path = Path(os.environ.get("U2NET_HOME", Path.home() / ".u2net")) / f"{MODEL_NAME}.onnx"
    if not path.is_file():
        pytest.skip(f"rembg's original model is not at {path}")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On CI (CI=true) a skipped test is a failure: every tool the tests need must be there."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped on CI, which must run everything: {report.longrepr}"


# --- serving: each layer's conftest provides `server` (in-process or a real bentoml serve) ---


@pytest.fixture(scope="session")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("served")


# Module scope, not session: `server` differs per layer, and a session-scoped fixture would keep
# the first layer's server for every later one when both layers run in one session.
@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
def upload_dir(server: Any) -> Path:
    return Path(server.env["UPLOAD_DIR"])


@pytest.fixture
def connect() -> Iterator[Connect]:
    """`connect(server, address=None)`: a client speaking from `address`, by default a
    loopback address no other test used (so a fresh budget)."""
    opened: list[httpx.Client] = []

    def open_client(server: Any, address: str | None = None) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=address or fresh_address())
        client = httpx.Client(base_url=server.url, timeout=120, transport=transport)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()
