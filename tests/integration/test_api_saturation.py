"""Saturation and request ids through the whole HTTP API in process: every 503 counted by why
it shed the request, the in-flight gauge following admitted requests, each Redis role's state,
and `X-Request-ID` kept from upstream. With real `bentoml serve` processes and a real
Prometheus: tests/e2e/test_saturation.py and tests/e2e/test_prometheus.py."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from operations.metrics import report_redis_roles
from tests import images
from tests.integration.api_server import InProcessServer
from tests.redis_server import RedisServer
from tests.serving import Connect, free_port

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")
SLOW_PHOTO = images.photo("astronaut", "PNG")
CONCURRENT = 4


COUNT_WAIT_S = 5.0  # a request is counted once its answer has gone out


def shed(reason: str) -> float:
    return REGISTRY.get_sample_value("bg_remover_shed_total", {"reason": reason}) or 0.0


def shed_since(reason: str, before: float, expected: int) -> float:
    """How many `reason` sheds were counted since `before`, waiting for `expected` of them."""
    deadline = time.monotonic() + COUNT_WAIT_S
    while shed(reason) - before < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return shed(reason) - before


def in_flight() -> float:
    return REGISTRY.get_sample_value("bg_remover_requests_in_flight") or 0.0


def remove(client: httpx.Client, data: bytes = PHOTO, **headers: str) -> httpx.Response:
    return client.post("/remove-background", files={"file": ("a.jpg", data)}, headers=headers)


def at_once(server: InProcessServer, connect: Connect, photos: list[bytes]) -> list[int]:
    clients = [connect(server) for _ in photos]
    barrier = threading.Barrier(len(photos))

    def fire(pair: tuple[httpx.Client, bytes]) -> int:
        barrier.wait()
        return remove(*pair).status_code

    with ThreadPoolExecutor(len(photos)) as pool:
        return sorted(pool.map(fire, zip(clients, photos, strict=True)))


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with InProcessServer(tmp_path_factory.mktemp("narrow"), {"MAX_CONCURRENCY": "1"}) as server:
        yield server


def test_the_concurrency_cap_sheds_as_overloaded(narrow: InProcessServer, connect: Connect) -> None:
    before = shed("overloaded")
    seen: list[float] = []
    polling = threading.Event()

    def watch() -> None:  # the gauge while requests run
        while not polling.is_set():
            seen.append(in_flight())
            polling.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        statuses = at_once(narrow, connect, [SLOW_PHOTO] * CONCURRENT)
    finally:
        polling.set()
        watcher.join()
    refused = statuses.count(503)
    assert refused >= 1 and 200 in statuses, statuses
    assert shed_since("overloaded", before, refused) == refused
    assert max(seen) == 1  # the one admitted request, never more under MAX_CONCURRENCY=1
    assert in_flight() == 0


def test_no_memory_in_time_sheds_as_memory(
    tmp_path_factory: pytest.TempPathFactory, connect: Connect
) -> None:
    env = {"MEMORY_BUDGET_MB": "300", "MEMORY_WAIT_S": "0.05"}  # one 12 MP photo at a time
    with InProcessServer(tmp_path_factory.mktemp("tight"), env) as tight:
        before = shed("memory"), shed("overloaded")
        large = images.large_jpeg()
        statuses = at_once(tight, connect, [images.fresh(large) for _ in range(3)])
    assert statuses[0] == 200 and statuses[-1] == 503, statuses
    assert shed_since("memory", before[0], statuses.count(503)) == statuses.count(503)
    assert shed("overloaded") == before[1]


def test_redis_down_with_closed_limits_sheds_as_unavailable(
    tmp_path_factory: pytest.TempPathFactory, connect: Connect
) -> None:
    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "RATE_LIMIT_FAIL_OPEN": "false"}
    with InProcessServer(tmp_path_factory.mktemp("closed"), env) as closed:
        before = shed("unavailable")
        response = remove(connect(closed))
        assert response.status_code == 503 and response.json()["code"] == "unavailable"
        assert shed_since("unavailable", before, 1) == 1
        # /health's 503 reports the state; it sheds nothing (a later 503 would be counted).
        assert connect(closed).get("/health").status_code == 503
        assert remove(connect(closed)).status_code == 503
        assert shed_since("unavailable", before, 2) == 2


def redis_up(role: str) -> float | None:
    return REGISTRY.get_sample_value("bg_remover_redis_up", {"role": role})


def test_each_redis_role_reports_whether_its_redis_answers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    try:
        server = InProcessServer(tmp_path_factory.mktemp("roles"), {"REDIS_URL": redis.url})
        wiring = server.application.wiring

        async def up_then_down() -> list[dict[str, bool | None]]:
            seen = [await wiring.redis_roles()]
            redis.stop()
            seen.append(await wiring.redis_roles())
            await wiring.aclose()  # its clients belong to this loop
            return seen

        assert asyncio.run(up_then_down()) == [
            {"limits": True, "cache": True},
            {"limits": False, "cache": False},
        ]
    finally:
        redis.stop()
    report_redis_roles({"limits": False, "cache": True})
    assert (redis_up("limits"), redis_up("cache")) == (0, 1)


def test_a_role_without_redis_has_no_series(tmp_path: Path) -> None:
    server = InProcessServer(tmp_path, {"CACHE_ENABLED": "false"})
    assert asyncio.run(server.application.wiring.redis_roles()) == {"limits": None, "cache": None}
    report_redis_roles({"limits": None, "cache": None, "spare": None})
    assert redis_up("spare") is None


# --- request ids -------------------------------------------------------------------------------


LOG_WAIT_S = 5.0


def logged_ids(caplog: pytest.LogCaptureFixture, endpoint: str) -> list[str]:
    return [
        record.request_id  # type: ignore[attr-defined]
        for record in caplog.records
        if getattr(record, "endpoint", None) == endpoint
    ]


@pytest.mark.parametrize(
    "upstream", ["7f3a9c1e2b4d4e6f8a0b1c2d3e4f5a6b", "req-42", "2c9e:1.a_B-x", "a" * 64]
)
def test_an_upstream_request_id_is_kept_echoed_and_logged(
    narrow: InProcessServer,
    connect: Connect,
    caplog: pytest.LogCaptureFixture,
    upstream: str,
) -> None:
    with caplog.at_level(logging.INFO, logger="bg_remover.requests"):
        response = connect(narrow).get("/presets", headers={"X-Request-ID": upstream})
        assert response.headers["x-request-id"] == upstream
        # The line is written once the response has gone out.
        deadline = time.monotonic() + LOG_WAIT_S
        while not (logged := logged_ids(caplog, "/presets")) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert logged == [upstream]


@pytest.mark.parametrize(
    "upstream", ["", "a" * 65, "has space", "semi;colon", "back\\slash", "-leading", "a=b", "a/b"]
)
def test_an_unusable_request_id_is_replaced(
    narrow: InProcessServer, connect: Connect, upstream: str
) -> None:
    response = connect(narrow).get("/presets", headers={"X-Request-ID": upstream})
    generated = response.headers["x-request-id"]
    assert generated != upstream
    assert len(generated) == 16 and int(generated, 16) >= 0


def test_without_an_upstream_id_each_request_gets_its_own(
    narrow: InProcessServer, connect: Connect
) -> None:
    client = connect(narrow)
    ids = {client.get("/presets").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize("path", ["/no-such-route", "/v1.0/no-such-route"])
def test_errors_outside_the_routes_carry_the_request_id(
    narrow: InProcessServer, connect: Connect, path: str
) -> None:
    response = connect(narrow).get(path, headers={"X-Request-ID": "lost-or-kept"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "lost-or-kept"
