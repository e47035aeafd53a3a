"""The load-test identity: a LOADTEST_KEYS key is accepted like an API key and gets budgets of
its own at RATE_LIMIT_LOADTEST_PER_HOUR, while every other client keeps the production limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import images
from tests.integration.api_server import InProcessServer

pytestmark = pytest.mark.slow
LIMIT, LOADTEST_LIMIT = 2, 5  # /read-file per hour: production, and the load-test key's own


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    env = {"API_KEYS": "customer-key", "LOADTEST_KEYS": "load-key,spare-load-key"}
    env |= {"RATE_LIMIT_READ_FILE_PER_HOUR": str(LIMIT)}
    env |= {"RATE_LIMIT_LOADTEST_PER_HOUR": str(LOADTEST_LIMIT)}
    with InProcessServer(tmp_path_factory.mktemp("loadtest-keys"), env=env) as server:
        (Path(server.env["UPLOAD_DIR"]) / "cat.jpg").write_bytes(images.photo("chelsea"))
        yield server


def read(server: InProcessServer, key: str) -> httpx.Response:
    headers = {"X-API-Key": key}
    return httpx.post(f"{server.url}/read-file", json={"path": "cat.jpg"}, headers=headers)


def test_the_load_test_key_has_its_own_budget_and_the_others_keep_theirs(keyed) -> None:
    for spent in range(1, LOADTEST_LIMIT + 1):  # past the production limit
        response = read(keyed, "load-key")
        assert response.status_code == 200, response.text
        assert response.headers["x-ratelimit-limit"] == str(LOADTEST_LIMIT)
        assert response.headers["x-ratelimit-remaining"] == str(LOADTEST_LIMIT - spent)
    refused = read(keyed, "load-key")
    assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
    assert read(keyed, "spare-load-key").status_code == 200  # each load-test key apart
    for spent in range(1, LIMIT + 1):  # the customer's budget: untouched, and production's
        response = read(keyed, "customer-key")
        assert response.status_code == 200, response.text
        assert response.headers["x-ratelimit-limit"] == str(LIMIT)
        assert response.headers["x-ratelimit-remaining"] == str(LIMIT - spent)
    refused = read(keyed, "customer-key")
    assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")


def test_a_wrong_key_is_still_refused(keyed) -> None:
    response = read(keyed, "not-a-load-key")
    assert (response.status_code, response.json()["code"]) == (401, "unauthorized")
