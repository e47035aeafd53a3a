"""Rate limits through real `bentoml serve` processes and the real model: exact budgets and
their headers, batches, the switch, two replicas sharing one Redis, and Redis outages.

Each test speaks from its own loopback address (127.0.0.N), so each starts on a fresh budget
while the servers are started once per class.
"""

from __future__ import annotations

import base64
import io
import json
import signal
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import httpx
import pytest
import redis

from tests import images
from tests.e2e.server import BentoServer, Connect, free_port, fresh_address
from tests.redis_server import RedisServer, running_redis

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
RETRY_INTERVAL_S = 1.0
OUTAGE_REQUEST_MAX_S = 5.0
OUTAGE_WARNING = "Redis unreachable ("  # ratelimit/backend.py, logged once per outage
RECOVERY_TIMEOUT_S = 10.0



# --- servers ------------------------------------------------------------------------------


def start_server(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str],
                 workdir: Path | None = None) -> BentoServer:
    workdir = workdir or tmp_path_factory.mktemp("rate-limits")
    server = BentoServer(workdir, env=env).start()
    (Path(server.env["UPLOAD_DIR"]) / "cat.jpg").write_bytes(PHOTO)
    return server


@pytest.fixture(scope="class")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    """In-process limits, small budgets, a small body limit."""
    server = start_server(
        tmp_path_factory, {**LIMIT_ENV, "MAX_CONTENT_LENGTH": str(MAX_CONTENT_LENGTH)}
    )
    yield server
    server.stop()


@pytest.fixture(scope="class")
def unlimited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    """Budgets of 1 everywhere, but the limiter switched off."""
    env = {name: "1" for name in LIMIT_ENV} | {"RATE_LIMIT_ENABLED": "false"}
    server = start_server(tmp_path_factory, env)
    yield server
    server.stop()


@pytest.fixture(scope="class")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="class")
def replicas(tmp_path_factory: pytest.TempPathFactory,
             private_redis: RedisServer) -> Iterator[tuple[BentoServer, BentoServer]]:
    """Two servers sharing the private Redis: remove-background 4/hour, preview 3/hour."""
    env = {
        "REDIS_URL": private_redis.url,
        "RATE_LIMIT_REMOVE_BG_PER_HOUR": "4",
        "RATE_LIMIT_PREVIEW_PER_HOUR": "3",
        **REDIS_ENV,
    }
    workdirs = [tmp_path_factory.mktemp("replica") for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:  # both start at once
        starting = [pool.submit(start_server, tmp_path_factory, env, workdir)
                    for workdir in workdirs]
        wait(starting)
    started = [future.result() for future in starting if future.exception() is None]
    try:
        assert len(started) == 2, [future.exception() for future in starting]
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="class")
def fail_closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    """Redis configured but never reachable, and RATE_LIMIT_FAIL_OPEN=false."""
    env = {
        **LIMIT_ENV, **REDIS_ENV,
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
    return client.post(path, files={field: ("cat.jpg", PHOTO, "image/jpeg")},
                       data={"quality": "5"})


def assert_budget(response: httpx.Response, limit: int, remaining: int) -> None:
    headers = response.headers
    assert headers.get("x-ratelimit-limit") == str(limit), (response.status_code, headers)
    assert headers.get("x-ratelimit-remaining") == str(remaining), (response.status_code, headers)
    reset = int(headers["x-ratelimit-reset"])
    now = time.time()
    assert now - 5 < reset <= now + HOUR + 5


def assert_limited(response: httpx.Response, limit: int, remaining: int = 0) -> None:
    received = time.time()
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "rate_limited"
    assert_budget(response, limit, remaining)
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert int(retry_after) >= 1
    assert received + int(retry_after) >= int(response.headers["x-ratelimit-reset"])


def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text


def manifest(response: httpx.Response) -> list[dict[str, object]]:
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return json.loads(archive.read("manifest.json"))["files"]


def health(server: BentoServer) -> httpx.Response:
    return httpx.get(f"{server.url}/health", timeout=10)


def wait_healthy(servers: tuple[BentoServer, ...]) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    pending = set(servers)
    while pending and time.monotonic() < deadline:
        pending = {server for server in pending if health(server).json()["status"] != "healthy"}
        if pending:
            time.sleep(0.2)
    assert not pending, [health(server).json() for server in pending]


def warnings_logged(server: BentoServer) -> int:
    lines = server.log_path.read_text(errors="replace").splitlines()
    return sum(OUTAGE_WARNING in line and "WARNING" in line for line in lines)


# --- exact budgets on one replica ---------------------------------------------------------


class TestBudgets:
    @pytest.mark.parametrize(("path", "limit"), LIMITED.items())
    def test_counts_down_to_zero_then_429(self, limited: BentoServer, connect: Connect,
                                          path: str, limit: int) -> None:
        client = connect(limited)
        for spent in range(1, limit + 1):
            response = good(client, path)
            assert_ok(response)
            assert_budget(response, limit, limit - spent)
        assert_limited(good(client, path), limit)
        assert_limited(good(client, path), limit)  # and stays refused

    @pytest.mark.parametrize(("path", "limit"), LIMITED.items())
    def test_later_4xx_carries_headers_and_spends_one(self, limited: BentoServer,
                                                      connect: Connect, path: str,
                                                      limit: int) -> None:
        client = connect(limited)
        refused = bad(client, path)
        assert refused.status_code == BAD_STATUS[path], refused.text
        assert_budget(refused, limit, limit - 1)
        response = good(client, path)
        assert_ok(response)
        assert_budget(response, limit, limit - 2)

    def test_budgets_are_per_endpoint(self, limited: BentoServer, connect: Connect) -> None:
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

    def test_budgets_are_per_client(self, limited: BentoServer, connect: Connect) -> None:
        first, second = connect(limited), connect(limited, "127.0.0.6")
        limit = LIMITED["/remove-background"]
        for _ in range(limit):
            assert bad(first, "/remove-background").status_code == 400
        assert_limited(good(first, "/remove-background"), limit)
        response = good(second, "/remove-background")
        assert_ok(response)
        assert_budget(response, limit, limit - 1)
        assert_limited(good(first, "/remove-background"), limit)

    def test_413_by_content_length_spends_nothing(self, limited: BentoServer,
                                                  connect: Connect) -> None:
        client = connect(limited)
        limit = LIMITED["/remove-background"]
        for _ in range(limit + 1):
            response = client.post("/remove-background",
                                   files={"file": ("big.png", BIG_BODY, "image/png")})
            assert response.status_code == 413, response.text
            assert response.json()["code"] == "payload_too_large"
        response = good(client, "/remove-background")
        assert_ok(response)
        assert_budget(response, limit, limit - 1)

    def test_batch_counts_each_file(self, limited: BentoServer, connect: Connect) -> None:
        client = connect(limited)
        limit = LIMITED["/remove-background-batch"]
        response = good(client, "/remove-background-batch", files=3)
        assert_ok(response)
        assert [entry["status"] for entry in manifest(response)] == ["ok"] * 3
        assert_budget(response, limit, limit - 3)

    def test_batch_over_remaining_budget_is_refused_whole(self, limited: BentoServer,
                                                          connect: Connect) -> None:
        client = connect(limited)
        limit = LIMITED["/remove-background-batch"]
        assert_ok(good(client, "/remove-background-batch", files=2))
        assert_limited(good(client, "/remove-background-batch", files=3), limit, remaining=2)
        assert_limited(good(client, "/remove-background-batch", files=3), limit, remaining=2)
        response = good(client, "/remove-background-batch", files=2)  # what is left still fits
        assert_ok(response)
        assert len(manifest(response)) == 2
        assert_budget(response, limit, 0)

    def test_batch_over_the_whole_limit_spends_nothing(self, limited: BentoServer,
                                                       connect: Connect) -> None:
        client = connect(limited)
        limit = LIMITED["/remove-background-batch"]
        assert_limited(good(client, "/remove-background-batch", files=limit + 1), limit,
                       remaining=limit)
        response = bad(client, "/remove-background-batch")
        assert response.status_code == 400
        assert_budget(response, limit, limit - 1)

    @pytest.mark.parametrize("path", ["/presets", "/health"])
    def test_presets_and_health_are_not_limited(self, limited: BentoServer, connect: Connect,
                                                path: str) -> None:
        client = connect(limited)
        for _ in range(max(LIMITED.values()) + 3):
            response = client.get(path)
            assert_ok(response)
            assert "x-ratelimit-limit" not in response.headers
            assert "x-ratelimit-remaining" not in response.headers


class TestDisabled:
    def test_no_429_and_no_headers(self, unlimited: BentoServer, connect: Connect) -> None:
        client = connect(unlimited)
        responses = [good(client, "/remove-background") for _ in range(2)]
        responses += [good(client, "/remove-background-batch", files=2)]
        responses += [good(client, "/read-file") for _ in range(3)]
        responses += [bad(client, "/remove-background-base64") for _ in range(3)]
        assert [r.status_code for r in responses] == [200] * 6 + [400] * 3
        for response in responses:
            assert not any(name.startswith("x-ratelimit") for name in response.headers)
            assert "retry-after" not in response.headers


# --- two replicas, one Redis, and its outages ---------------------------------------------


class TestSharedRedis:
    """In order: one shared budget; Redis killed; back on the same port; frozen and thawed.
    Each test brings Redis to the state it starts from, so each can also run alone."""

    def test_replicas_share_one_budget(self, replicas: tuple[BentoServer, BentoServer],
                                       connect: Connect) -> None:
        first, second = replicas
        for server in replicas:
            body = health(server).json()
            assert body["status"] == "healthy", body
            assert body["checks"]["redis"] == {"ok": True, "detail": "redis ok"}
        address = fresh_address()
        on_a, on_b = connect(first, address), connect(second, address)
        for client, remaining in [(on_a, 3), (on_b, 2)]:
            response = good(client, "/remove-background")
            assert_ok(response)
            assert_budget(response, 4, remaining)
        for client, remaining in [(on_a, 1), (on_b, 0)]:  # refused options spend one too
            response = bad(client, "/remove-background")
            assert response.status_code == 400, response.text
            assert_budget(response, 4, remaining)
        assert_limited(good(on_a, "/remove-background"), 4)
        assert_limited(good(on_b, "/remove-background"), 4)

    def test_outage_serves_on_in_process_limits(self, replicas: tuple[BentoServer, BentoServer],
                                                private_redis: RedisServer,
                                                connect: Connect) -> None:
        first, second = replicas
        warned = [warnings_logged(server) for server in replicas]
        private_redis.stop()
        outage_started = time.monotonic()
        address = fresh_address()
        on_a, on_b = connect(first, address), connect(second, address)

        def timed(call: Callable[[], httpx.Response]) -> httpx.Response:
            started = time.monotonic()
            response = call()
            assert time.monotonic() - started < OUTAGE_REQUEST_MAX_S
            return response

        # Replica A: its own in-process budget of 3, exactly.
        for remaining in (2, 1, 0):
            response = timed(lambda: good(on_a, "/remove-background-preview"))
            assert_ok(response)
            assert_budget(response, 3, remaining)
        assert_limited(timed(lambda: good(on_a, "/remove-background-preview")), 3)
        # Replica B: at most 3 as well (one real image, two refused options).
        response = timed(lambda: good(on_b, "/remove-background-preview"))
        assert_ok(response)
        assert_budget(response, 3, 2)
        for remaining in (1, 0):
            response = timed(lambda: bad(on_b, "/remove-background-preview"))
            assert response.status_code == 400
            assert_budget(response, 3, remaining)
        assert_limited(timed(lambda: good(on_b, "/remove-background-preview")), 3)

        # Outlive a probe interval, so failed probes happen, then look at health and logs.
        time.sleep(max(0.0, outage_started + RETRY_INTERVAL_S + 0.2 - time.monotonic()))
        for server, client, before in zip(replicas, (on_a, on_b), warned, strict=True):
            assert_ok(timed(lambda client=client: good(client, "/remove-background")))
            response = timed(lambda server=server: health(server))
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["status"] == "degraded", body
            assert body["checks"]["redis"]["ok"] is False
            assert all(check["ok"] for name, check in body["checks"].items() if name != "redis")
            assert warnings_logged(server) == before + 1, server.log()  # one per outage

    def test_recovery_shares_the_budget_again(self, replicas: tuple[BentoServer, BentoServer],
                                              private_redis: RedisServer,
                                              connect: Connect) -> None:
        first, second = replicas
        warned = [warnings_logged(server) for server in replicas]
        private_redis.stop()  # whatever the previous test left
        private_redis.start()  # same port
        wait_healthy(replicas)

        address = fresh_address()
        on_a, on_b = connect(first, address), connect(second, address)
        response = good(on_a, "/remove-background")
        assert_ok(response)
        assert_budget(response, 4, 3)
        response = good(on_b, "/remove-background")
        assert_ok(response)
        assert_budget(response, 4, 2)
        store = redis.Redis.from_url(private_redis.url)
        try:
            assert list(store.scan_iter(match="bg_remover*"))
        finally:
            store.close()
        assert [warnings_logged(server) for server in replicas] == warned  # no new outage

    def test_frozen_redis_is_another_outage(self, replicas: tuple[BentoServer, BentoServer],
                                            private_redis: RedisServer,
                                            connect: Connect) -> None:
        """A Redis that accepts connections but never answers (SIGSTOP) must cost a request
        no more than the timeouts; once it thaws, the budget is shared and exact again."""
        if private_redis.process is None:
            private_redis.start()
        wait_healthy(replicas)
        warned = [warnings_logged(server) for server in replicas]
        address = fresh_address()
        on_a, on_b = connect(replicas[0], address), connect(replicas[1], address)
        assert private_redis.process is not None
        private_redis.process.send_signal(signal.SIGSTOP)
        try:
            for client in (on_a, on_b, on_a, on_b):
                started = time.monotonic()
                response = bad(client, "/remove-background")
                assert time.monotonic() - started < OUTAGE_REQUEST_MAX_S
                assert response.status_code == 400, response.text
            assert_budget(response, 4, 2)  # in process: each replica counted its own two
            for server in replicas:
                started = time.monotonic()
                body = health(server).json()
                assert time.monotonic() - started < OUTAGE_REQUEST_MAX_S
                assert body["status"] == "degraded", body
        finally:
            private_redis.process.send_signal(signal.SIGCONT)
        assert [warnings_logged(server) for server in replicas] == [n + 1 for n in warned]

        wait_healthy(replicas)
        address = fresh_address()
        on_a, on_b = connect(replicas[0], address), connect(replicas[1], address)
        for client, remaining in [(on_a, 3), (on_b, 2), (on_a, 1), (on_b, 0)]:
            response = bad(client, "/remove-background")
            assert response.status_code == 400, response.text
            assert_budget(response, 4, remaining)
        assert_limited(good(on_a, "/remove-background"), 4)


class TestFailClosed:
    @pytest.mark.parametrize("path", LIMITED)
    def test_limited_endpoints_answer_503(self, fail_closed: BentoServer, connect: Connect,
                                          path: str) -> None:
        started = time.monotonic()
        response = good(connect(fail_closed), path)
        assert time.monotonic() - started < OUTAGE_REQUEST_MAX_S
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "unavailable"

    def test_health_is_unhealthy(self, fail_closed: BentoServer) -> None:
        response = health(fail_closed)
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "unhealthy"
        assert body["checks"]["redis"]["ok"] is False
        assert body["checks"]["model"]["ok"] is True

    def test_unlimited_routes_still_answer(self, fail_closed: BentoServer,
                                           connect: Connect) -> None:
        assert_ok(connect(fail_closed).get("/presets"))
