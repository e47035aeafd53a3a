"""Rate limits through the whole HTTP API in process and the real model: exact budgets and
their headers, batches, the switch, and a Redis that never answers with fail-closed limits.
Two replicas sharing one Redis, and its outages, take real `bentoml serve` processes
(tests/e2e/test_rate_limits.py).

Each test speaks from its own loopback address (127.0.0.N), so each starts on a fresh budget
while the servers are started once per class.
"""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import images
from tests.answers import assert_budget, assert_limited, assert_ok
from tests.integration.api_server import InProcessServer
from tests.serving import Connect, free_port

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")
PHOTO_B64 = base64.b64encode(PHOTO).decode()
BIG_BODY = images.photo("astronaut", "PNG")  # 424 kB: over MAX_CONTENT_LENGTH below
MAX_CONTENT_LENGTH = 200_000
HOUR = 3600

LIMITED = {  # path -> hourly limit on the `limited` server
    "/remove-background": 3,
    "/remove-background-preview": 2,
    "/remove-background-base64": 2,
    "/read-file": 2,
    "/remove-background-batch": 4,
}
LIMIT_ENV = {
    "RATE_LIMIT_REMOVE_BG_PER_HOUR": "3",
    "RATE_LIMIT_PREVIEW_PER_HOUR": "2",
    "RATE_LIMIT_BASE64_PER_HOUR": "2",
    "RATE_LIMIT_READ_FILE_PER_HOUR": "2",
    "RATE_LIMIT_BATCH_PER_HOUR": "4",
}
REDIS_ENV = {"REDIS_SOCKET_TIMEOUT": "0.25", "REDIS_RETRY_INTERVAL": "1"}
OUTAGE_REQUEST_MAX_S = 5.0


# --- servers ------------------------------------------------------------------------------


def start_server(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> InProcessServer:
    server = InProcessServer(tmp_path_factory.mktemp("rate-limits"), env=env).start()
    (Path(server.env["UPLOAD_DIR"]) / "cat.jpg").write_bytes(PHOTO)
    return server


@pytest.fixture(scope="class")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """In-process limits, small budgets, a small body limit."""
    server = start_server(
        tmp_path_factory, {**LIMIT_ENV, "MAX_CONTENT_LENGTH": str(MAX_CONTENT_LENGTH)}
    )
    yield server
    server.stop()


@pytest.fixture(scope="class")
def unlimited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """Budgets of 1 everywhere, but the limiter switched off."""
    env = {name: "1" for name in LIMIT_ENV} | {"RATE_LIMIT_ENABLED": "false"}
    server = start_server(tmp_path_factory, env)
    yield server
    server.stop()


@pytest.fixture(scope="class")
def fail_closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """Redis configured but never reachable, and RATE_LIMIT_FAIL_OPEN=false."""
    env = {
        **LIMIT_ENV,
        **REDIS_ENV,
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        "RATE_LIMIT_FAIL_OPEN": "false",
    }
    server = start_server(tmp_path_factory, env)
    yield server
    server.stop()


# --- requests and assertions --------------------------------------------------------------


def good(client: httpx.Client, path: str, files: int = 1) -> httpx.Response:
    """A request the endpoint answers with 200."""
    if path == "/remove-background-base64":
        return client.post(path, json={"image": PHOTO_B64})
    if path == "/read-file":
        return client.post(path, json={"path": "cat.jpg"})
    if path == "/remove-background-batch":
        uploads = [("files", (f"cat{i}.jpg", PHOTO, "image/jpeg")) for i in range(files)]
        return client.post(path, files=uploads)
    return client.post(path, files={"file": ("cat.jpg", PHOTO, "image/jpeg")})


BAD_STATUS = {path: 404 if path == "/read-file" else 400 for path in LIMITED}


def bad(client: httpx.Client, path: str) -> httpx.Response:
    """A request refused after the limit check: a bad option (400), a missing file (404)."""
    if path == "/remove-background-base64":
        return client.post(path, json={"image": PHOTO_B64, "quality": 5})
    if path == "/read-file":
        return client.post(path, json={"path": "missing.jpg"})
    field = "files" if path == "/remove-background-batch" else "file"
    return client.post(path, files={field: ("cat.jpg", PHOTO, "image/jpeg")}, data={"quality": "5"})


def manifest(response: httpx.Response) -> list[dict[str, object]]:
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return json.loads(archive.read("manifest.json"))["files"]


def health(server: InProcessServer) -> httpx.Response:
    return httpx.get(f"{server.url}/health", timeout=10)


# --- exact budgets on one replica ---------------------------------------------------------


class TestBudgets:
    @pytest.mark.parametrize(("path", "limit"), LIMITED.items())
    def test_counts_down_to_zero_then_429(
        self, limited: InProcessServer, connect: Connect, path: str, limit: int
    ) -> None:
        client = connect(limited)
        for spent in range(1, limit + 1):
            response = good(client, path)
            assert_ok(response)
            assert_budget(response, limit, limit - spent)
        assert_limited(good(client, path), limit)
        assert_limited(good(client, path), limit)  # and stays refused

    @pytest.mark.parametrize(("path", "limit"), LIMITED.items())
    def test_later_4xx_carries_headers_and_spends_one(
        self, limited: InProcessServer, connect: Connect, path: str, limit: int
    ) -> None:
        client = connect(limited)
        refused = bad(client, path)
        assert refused.status_code == BAD_STATUS[path], refused.text
        assert_budget(refused, limit, limit - 1)
        response = good(client, path)
        assert_ok(response)
        assert_budget(response, limit, limit - 2)

    def test_budgets_are_per_endpoint(self, limited: InProcessServer, connect: Connect) -> None:
        client = connect(limited)
        for _ in range(LIMITED["/remove-background"]):
            assert bad(client, "/remove-background").status_code == 400
        assert_limited(bad(client, "/remove-background"), LIMITED["/remove-background"])
        preview = good(client, "/remove-background-preview")
        assert_ok(preview)
        assert_budget(preview, LIMITED["/remove-background-preview"], 1)
        read = good(client, "/read-file")
        assert_ok(read)
        assert_budget(read, LIMITED["/read-file"], 1)

    def test_budgets_are_per_client(self, limited: InProcessServer, connect: Connect) -> None:
        first, second = connect(limited), connect(limited, "127.0.0.6")
        limit = LIMITED["/remove-background"]
        for _ in range(limit):
            assert bad(first, "/remove-background").status_code == 400
        assert_limited(good(first, "/remove-background"), limit)
        response = good(second, "/remove-background")
        assert_ok(response)
        assert_budget(response, limit, limit - 1)
        assert_limited(good(first, "/remove-background"), limit)

    def test_413_by_content_length_spends_nothing(
        self, limited: InProcessServer, connect: Connect
    ) -> None:
        client = connect(limited)
        limit = LIMITED["/remove-background"]
        for _ in range(limit + 1):
            response = client.post(
                "/remove-background", files={"file": ("big.png", BIG_BODY, "image/png")}
            )
            assert response.status_code == 413, response.text
            assert response.json()["code"] == "payload_too_large"
        response = good(client, "/remove-background")
        assert_ok(response)
        assert_budget(response, limit, limit - 1)

    def test_batch_counts_each_file(self, limited: InProcessServer, connect: Connect) -> None:
        client = connect(limited)
        limit = LIMITED["/remove-background-batch"]
        response = good(client, "/remove-background-batch", files=3)
        assert_ok(response)
        assert [entry["status"] for entry in manifest(response)] == ["ok"] * 3
        assert_budget(response, limit, limit - 3)

    def test_batch_over_remaining_budget_is_refused_whole(
        self, limited: InProcessServer, connect: Connect
    ) -> None:
        client = connect(limited)
        limit = LIMITED["/remove-background-batch"]
        assert_ok(good(client, "/remove-background-batch", files=2))
        assert_limited(good(client, "/remove-background-batch", files=3), limit, remaining=2)
        assert_limited(good(client, "/remove-background-batch", files=3), limit, remaining=2)
        response = good(client, "/remove-background-batch", files=2)  # what is left still fits
        assert_ok(response)
        assert len(manifest(response)) == 2
        assert_budget(response, limit, 0)

    def test_batch_over_the_whole_limit_spends_nothing(
        self, limited: InProcessServer, connect: Connect
    ) -> None:
        client = connect(limited)
        limit = LIMITED["/remove-background-batch"]
        assert_limited(
            good(client, "/remove-background-batch", files=limit + 1), limit, remaining=limit
        )
        response = bad(client, "/remove-background-batch")
        assert response.status_code == 400
        assert_budget(response, limit, limit - 1)

    @pytest.mark.parametrize("path", ["/presets", "/health"])
    def test_presets_and_health_are_not_limited(
        self, limited: InProcessServer, connect: Connect, path: str
    ) -> None:
        client = connect(limited)
        for _ in range(max(LIMITED.values()) + 3):
            response = client.get(path)
            assert_ok(response)
            assert "x-ratelimit-limit" not in response.headers
            assert "x-ratelimit-remaining" not in response.headers


class TestDisabled:
    def test_no_429_and_no_headers(self, unlimited: InProcessServer, connect: Connect) -> None:
        client = connect(unlimited)
        responses = [good(client, "/remove-background") for _ in range(2)]
        responses += [good(client, "/remove-background-batch", files=2)]
        responses += [good(client, "/read-file") for _ in range(3)]
        responses += [bad(client, "/remove-background-base64") for _ in range(3)]
        assert [r.status_code for r in responses] == [200] * 6 + [400] * 3
        for response in responses:
            assert not any(name.startswith("x-ratelimit") for name in response.headers)
            assert "retry-after" not in response.headers


class TestFailClosed:
    @pytest.mark.parametrize("path", LIMITED)
    def test_limited_endpoints_answer_503(
        self, fail_closed: InProcessServer, connect: Connect, path: str
    ) -> None:
        started = time.monotonic()
        response = good(connect(fail_closed), path)
        assert time.monotonic() - started < OUTAGE_REQUEST_MAX_S
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "unavailable"

    def test_health_is_unhealthy(self, fail_closed: InProcessServer) -> None:
        response = health(fail_closed)
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "unhealthy"
        assert body["checks"]["redis"]["ok"] is False
        assert body["checks"]["model"]["ok"] is True

    def test_unlimited_routes_still_answer(
        self, fail_closed: InProcessServer, connect: Connect
    ) -> None:
        assert_ok(connect(fail_closed).get("/presets"))
