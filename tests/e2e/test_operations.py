"""Running the service, where it takes real `bentoml serve` processes: health with the model
service behind it, `/metrics`, the JSON request log file, and BentoML's 503 for
an overfull model queue. The rest of operations runs in process
(tests/integration/test_api_operations.py)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import images
from tests.answers import assert_ok
from tests.e2e.server import BentoServer
from tests.serving import Connect, fresh_address, meet_base64_limit

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")
PHOTO_B64 = base64.b64encode(PHOTO).decode()
BASE64_LIMIT = 1  # on the `ops` server: a 429 is two requests away
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
CHECKS = {"app", "model", "redis", "disk_space", "memory", "image_work"}


def serve(workdir: Path, env: dict[str, str]) -> BentoServer:
    return BentoServer(workdir, env=env)


@pytest.fixture(scope="module")
def ops_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("operations")


@pytest.fixture(scope="module")
def ops(ops_dir: Path) -> Iterator[BentoServer]:
    """JSON logs to a file in a folder that does not exist yet, a base64 budget of 1;
    otherwise defaults (default METRICS_ALLOW, no Redis)."""
    env = {
        "LOG_FORMAT": "json",
        "LOG_FILE": str(ops_dir / "logs" / "service.log"),
        "RATE_LIMIT_BASE64_PER_HOUR": str(BASE64_LIMIT),
    }
    with serve(ops_dir, env) as server:
        yield server


def remove(client: httpx.Client, data: bytes = PHOTO, **options: str) -> httpx.Response:
    return client.post("/remove-background", files={"file": ("cat.jpg", data)}, data=options)


# --- health ------------------------------------------------------------------------------------


class TestHealth:
    def test_healthy_without_redis(self, ops: BentoServer, connect: Connect) -> None:
        response = connect(ops).get("/health")
        assert_ok(response)
        body = response.json()
        assert body["status"] == "healthy"
        assert set(body["checks"]) == CHECKS
        for name, check in body["checks"].items():
            assert set(check) == {"ok", "detail"}, name
            assert check["ok"] is True, (name, check)
            assert isinstance(check["detail"], str) and check["detail"], name
        detail = body["checks"]["redis"]["detail"]
        assert detail.startswith("limits: in-process limits; cache: in process, "), detail


# --- metrics -----------------------------------------------------------------------------------


def scrape(server: BentoServer) -> list[tuple[str, dict[str, str], float]]:
    response = httpx.get(f"{server.url}/metrics", timeout=10)  # from 127.0.0.1
    assert_ok(response)
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels` (0 when none)."""
    return sum(
        value
        for sample, found, value in samples
        if sample == name and labels.items() <= found.items()
    )


class TestMetrics:
    def test_service_metrics_follow_requests(self, ops: BentoServer, connect: Connect) -> None:
        before = scrape(ops)
        client = connect(ops)
        assert_ok(remove(client))
        meet_base64_limit(client, PHOTO_B64, BASE64_LIMIT)
        after = scrape(ops)

        def delta(name: str, **labels: str) -> float:
            return total(after, name, **labels) - total(before, name, **labels)

        assert delta("bg_remover_requests_total", endpoint="/remove-background", status="200") == 1
        assert (
            delta("bg_remover_requests_total", endpoint="/remove-background-base64", status="429")
            == 1
        )
        assert (
            delta("bg_remover_request_duration_seconds_count", endpoint="/remove-background") == 1
        )
        assert delta("bg_remover_rate_limited_total") == 1
        assert delta("bg_remover_output_bytes_count", format="PNG") == 1
        assert delta("bg_remover_output_bytes_sum", format="PNG") > 0
        assert delta("bg_remover_compression_ratio_count", format="PNG") == 1
        assert delta("bg_remover_inference_batch_size_count") >= 1
        # BentoML's own metrics are still there.
        assert total(after, "bentoml_service_request_total", endpoint="/remove-background") >= 1

    def test_every_metric_is_prefixed(self, ops: BentoServer) -> None:
        names = {name for name, _, _ in scrape(ops)}
        ours = {name for name in names if name.startswith("bg_remover_")}
        assert {
            "bg_remover_requests_total",
            "bg_remover_rate_limited_total",
            "bg_remover_inference_batch_size_count",
        } <= ours
        assert any(name.startswith("bentoml_") for name in names)


# --- request logs ------------------------------------------------------------------------------


LOG_WAIT_S = 5.0  # the line is written once the response has gone out


def log_lines(ops_dir: Path) -> list[dict[str, object]]:
    text = (ops_dir / "logs" / "service.log").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def logged(ops_dir: Path, request_id: str) -> list[dict[str, object]]:
    """The log lines of one request, waiting briefly for the first to appear."""
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        lines = [line for line in log_lines(ops_dir) if line.get("request_id") == request_id]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


class TestLogs:
    def test_one_json_line_per_request(
        self, ops: BentoServer, ops_dir: Path, connect: Connect
    ) -> None:
        address = fresh_address()
        photo = images.fresh(PHOTO)  # never seen: a cache miss runs every stage
        response = remove(connect(ops, address), photo)
        assert_ok(response)
        lines = logged(ops_dir, response.headers["x-request-id"])
        assert len(lines) == 1, lines
        line = lines[0]
        assert line["endpoint"] == "/remove-background"
        assert line["status"] == 200
        assert line["cache"] == "miss"
        assert line["input_bytes"] == len(photo)
        assert line["output_bytes"] == len(response.content)
        ratio = round((1 - len(response.content) / len(photo)) * 100)
        assert line["compression_ratio"] == f"{ratio}%"
        client = str(line["client"])
        assert re.fullmatch(r"[0-9a-f]{16}", client), client
        assert address not in json.dumps(line)
        for stage in ("decode", "inference", "encode"):
            assert isinstance(line[stage], int | float) and line[stage] >= 0, stage

    def test_every_line_is_json(self, ops: BentoServer, ops_dir: Path, connect: Connect) -> None:
        response = connect(ops).get("/presets")
        assert_ok(response)
        lines = logged(ops_dir, response.headers["x-request-id"])  # raises on a non-JSON line
        assert [line["endpoint"] for line in lines] == ["/presets"]


# --- HTTP hardening ----------------------------------------------------------------------------


def test_model_queue_overflow_is_overloaded_json(tmp_path: Path) -> None:
    """BentoML's own 503 for work queued past MAX_LATENCY_MS becomes the contract's error."""
    photo = images.photo("astronaut", "PNG")
    with BentoServer(tmp_path, env={"MAX_LATENCY_MS": "5"}) as server:

        def post(_: int) -> httpx.Response:
            return httpx.post(
                f"{server.url}/remove-background", files={"file": ("a.png", photo)}, timeout=120
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(post, range(16)))
        overloaded = [r for r in responses if r.status_code == 503]
        assert overloaded, [r.status_code for r in responses]
        assert {r.status_code for r in responses} <= {200, 503}
        for response in overloaded:
            assert response.json()["code"] == "overloaded"
            assert int(response.headers["retry-after"]) >= 1
        assert any(r.status_code == 200 for r in responses)  # the queue head is served
        # Counted as shed by the model service's queue (once each answer has gone out), apart
        # from the concurrency cap.
        deadline = time.monotonic() + LOG_WAIT_S
        while (
            counted := total(scrape(server), "bg_remover_shed_total", reason="model_queue")
        ) < len(overloaded) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert counted == len(overloaded)
        assert total(scrape(server), "bg_remover_shed_total", reason="overloaded") == 0
