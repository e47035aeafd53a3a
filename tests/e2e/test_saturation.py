"""The saturation metrics on a real `bentoml serve`'s `/metrics`, moving under a short load:
requests in flight rise and fall back to 0, shed requests are counted by reason, each Redis
role's state follows its Redis, and every metric operations/metrics.py defines is exported (the
names the dashboard and the alert rules may use: tests/k8s/known_metrics.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from contract.errors import SHED_REASONS
from tests import images
from tests.e2e.server import BentoServer
from tests.e2e.test_operations import scrape
from tests.k8s.known_metrics import family, service_metrics
from tests.redis_server import RedisServer, running_redis

pytestmark = pytest.mark.slow

MAX_CONCURRENCY = 2
CLIENTS = 6
DEADLINE_S = 120
REDIS_PROBE_S = 10  # application/app.py's REDIS_PROBE_S
Samples = list[tuple[str, dict[str, str], float]]


class Load:
    """CLIENTS clients sending fresh 1 MP photos (every one a cache miss) until stopped; a
    refused one waits a little before its next request, as a polite client does."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stopped = threading.Event()
        self.statuses: list[int] = []
        self.pool = ThreadPoolExecutor(CLIENTS)
        self.photo = images.photo("chelsea", "JPEG")

    def _client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while not self.stopped.is_set():
                answer = client.post(
                    "/remove-background", files={"file": ("a.jpg", images.fresh(self.photo))}
                )
                self.statuses.append(answer.status_code)
                if answer.status_code == 503:
                    self.stopped.wait(0.2)

    def __enter__(self) -> Load:
        for _ in range(CLIENTS):
            self.pool.submit(self._client)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.pool.shutdown(wait=True)


def poll(server: BentoServer, condition: Callable[[Samples], bool], what: str) -> Samples:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        samples = scrape(server)
        if condition(samples):
            return samples
        time.sleep(0.1)
    raise AssertionError(f"{what} not seen within {DEADLINE_S} s")


def value(samples: Samples, name: str, **labels: str) -> float | None:
    found = [v for n, got, v in samples if n == name and labels.items() <= got.items()]
    return sum(found) if found else None


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def busy(redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    env = {
        "REDIS_URL": redis.url,
        "MAX_CONCURRENCY": str(MAX_CONCURRENCY),
        "RATE_LIMIT_PREVIEW_PER_HOUR": "1",  # a 429 two requests away
    }
    with BentoServer(tmp_path_factory.mktemp("busy"), env=env) as server:
        yield server


def test_in_flight_rises_under_load_and_falls_back(busy: BentoServer) -> None:
    before = scrape(busy)
    assert value(before, "bg_remover_requests_in_flight") == 0
    for reason in SHED_REASONS:  # every reason's series exists from the start, at 0
        assert value(before, "bg_remover_shed_total", reason=reason) == 0
    with Load(busy.url) as load:
        during = poll(
            busy,
            lambda s: (
                (value(s, "bg_remover_requests_in_flight") or 0) > 0
                and (value(s, "bg_remover_shed_total", reason="overloaded") or 0) > 0
            ),
            "requests in flight and shed load",
        )
    assert 0 < value(during, "bg_remover_requests_in_flight") <= MAX_CONCURRENCY  # type: ignore[operator]
    refused = load.statuses.count(503)
    assert 200 in load.statuses and refused
    # Each is counted once its answer has gone out.
    after = poll(
        busy,
        lambda s: (
            value(s, "bg_remover_requests_in_flight") == 0
            and value(s, "bg_remover_shed_total", reason="overloaded") == refused
        ),
        f"no request in flight and {refused} counted as shed",
    )
    assert value(after, "bg_remover_admitted_memory_bytes") == 0
    assert (value(after, "bg_remover_inference_duration_seconds_count", model="u2netp") or 0) > 0


def test_every_metric_the_service_defines_is_exported(busy: BentoServer) -> None:
    with httpx.Client(base_url=busy.url, timeout=120) as client:
        for _ in range(2):  # the second is a 429
            client.post("/remove-background-preview", files={"file": ("a.jpg", images.rgba_png())})
    names = {family(name) for name, _, _ in scrape(busy)}
    missing = {family(name) for name in service_metrics()} - names
    assert not missing, f"defined in operations/metrics.py but not on /metrics: {missing}"
    build = [labels for name, labels, v in scrape(busy) if name == "bg_remover_build_info"]
    assert build and all(labels["model"] == "u2netp" and labels["bentoml"] for labels in build)


def test_each_redis_role_follows_its_redis(busy: BentoServer, redis: RedisServer) -> None:
    up = poll(
        busy,
        lambda s: (
            value(s, "bg_remover_redis_up", role="limits") == 1
            and value(s, "bg_remover_redis_up", role="cache") == 1
        ),
        "both roles up",
    )
    assert {labels["role"] for name, labels, _ in up if name == "bg_remover_redis_up"} == {
        "limits",
        "cache",
    }
    redis.stop()
    started = time.monotonic()
    poll(
        busy,
        lambda s: (
            value(s, "bg_remover_redis_up", role="limits") == 0
            and value(s, "bg_remover_redis_up", role="cache") == 0
        ),
        "both roles down",
    )
    # Seen without any request: the service probes each role itself.
    assert time.monotonic() - started < 3 * REDIS_PROBE_S
