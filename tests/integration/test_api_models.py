"""`GET /models`: what `model=` accepts, guarded by API keys, never rate limited."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.api_server import InProcessServer
from tests.serving import Connect

pytestmark = pytest.mark.slow


def test_the_served_model_is_listed(client: httpx.Client) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "default": "u2netp",
        "models": [{"name": "u2netp", "input_size": 320, "precision": "fp32", "batched": True}],
    }
    assert "x-ratelimit-limit" not in response.headers


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with InProcessServer(tmp_path_factory.mktemp("models"), env={"API_KEYS": "k1"}) as server:
        yield server


def test_models_need_a_key_like_the_processing_routes(
    keyed: InProcessServer, connect: Connect
) -> None:
    client = connect(keyed)
    refused = client.get("/models")
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    assert client.get("/models", headers={"X-API-Key": "k1"}).status_code == 200
