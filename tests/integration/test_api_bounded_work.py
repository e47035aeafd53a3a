"""Bounded work per image and per body, through the whole HTTP API in process: scan bombs,
header floods and JSON floods are refused cheaply and before any budget is spent; a header is
read once per request and never on the event loop; work whose client is gone is stopped; a
starved image pool shows in /health; a mask is reused only for a decode at the same scale."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from prometheus_client import REGISTRY

import gateway.requests
from application.image_work import STARVED_AFTER_S, Cancellation, ImageWorkers
from tests import hostile, images
from tests.answers import assert_error, assert_ok
from tests.integration.api_server import InProcessServer
from tests.serving import Connect

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")


def remove(
    client: httpx.Client, data: bytes, path: str = "/remove-background", **options: str
) -> httpx.Response:
    return client.post(path, files={"file": ("image.jpg", data)}, data=options)


def requests_counted(endpoint: str, status: int) -> float:
    labels = {"endpoint": endpoint, "status": str(status)}
    return REGISTRY.get_sample_value("bg_remover_requests_total", labels) or 0.0


def wait_for(condition, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


class ErrorLogs(logging.Handler):
    """Error records (with or without a traceback) of the service's and uvicorn's loggers."""

    LOGGERS = ("bg_remover", "uvicorn", "uvicorn.error", "")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> ErrorLogs:
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)


# --- refused cheaply, before the budget ---------------------------------------------------


@pytest.mark.parametrize("name", ["scan_bomb", *sorted(hostile.HEADER_FLOODS)])
def test_bombs_and_header_floods_are_400_invalid_image(
    server: InProcessServer, connect: Connect, name: str
) -> None:
    data = hostile.scan_bomb_jpeg() if name == "scan_bomb" else hostile.HEADER_FLOODS[name]()
    response = remove(connect(server), data)
    assert_error(response, 400, "invalid_image")
    assert any(word in response.json()["details"] for word in ("at most", "more than"))


def test_a_json_flood_is_400_before_parsing_and_spends_nothing(
    server: InProcessServer, connect: Connect
) -> None:
    client = connect(server)
    response = client.post(
        "/remove-background-base64",
        content=hostile.json_flood(),
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_parameter")
    assert "values" in response.json()["details"]
    assert "x-ratelimit-remaining" not in response.headers  # refused before the budget


def test_a_large_json_body_is_parsed_off_the_event_loop(
    server: InProcessServer, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed_in: list[str] = []
    original = gateway.requests.parse_json_object

    def recording(raw: bytes):  # type: ignore[no-untyped-def]
        parsed_in.append(threading.current_thread().name)
        return original(raw)

    monkeypatch.setattr(gateway.requests, "parse_json_object", recording)
    body = {"image": base64.b64encode(images.large_jpeg()).decode(), "max_width": 300}
    assert_ok(connect(server).post("/remove-background-base64", json=body))
    assert len(parsed_in) == 1 and parsed_in[0] != f"api-{server.port}", parsed_in


def test_a_json_member_sent_twice_is_400(server: InProcessServer, connect: Connect) -> None:
    body = b'{"image": "%s", "format": "PNG", "format": "JPEG"}' % base64.b64encode(PHOTO)
    response = connect(server).post(
        "/remove-background-base64", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_parameter")
    assert "more than once" in response.json()["details"]


# --- the header: read once, off the event loop --------------------------------------------


def test_the_header_is_read_once_per_request_and_never_on_the_event_loop(
    server: InProcessServer, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    large, opened = images.fresh(images.large_jpeg()), []
    original = Image.open

    def counting_open(*args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    response = remove(connect(server), large, max_width="800")
    assert_ok(response)
    assert response.headers["x-cache"] == "miss"
    assert len(opened) == 1, opened
    assert all(name.startswith("image-work") for name in opened), opened


# --- work for a client that is gone ---------------------------------------------------------


def raw_post(port: int, path: str, body: bytes, content_type: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def multipart(data: bytes, boundary: str = "b") -> tuple[bytes, str]:
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        f"\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_client_that_leaves_mid_upload_is_499_without_a_traceback(
    server: InProcessServer,
) -> None:
    body, content_type = multipart(images.large_jpeg())
    before = {status: requests_counted("/remove-background", status) for status in (499, 500)}
    with ErrorLogs() as errors:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(
            f"POST /remove-background HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 3]
        )
        time.sleep(0.2)  # a third of the body is in; then the client goes
        sock.close()
        wait_for(lambda: requests_counted("/remove-background", 499) > before[499])
    assert requests_counted("/remove-background", 500) == before[500]
    assert errors.records == []


def test_a_client_that_leaves_during_processing_gets_its_work_stopped(
    server: InProcessServer,
) -> None:
    body, content_type = multipart(images.fresh(images.large_jpeg()))
    before = {
        "499": requests_counted("/remove-background", 499),
        "miss": REGISTRY.get_sample_value("bg_remover_cache_requests_total", {"result": "miss"})
        or 0.0,
    }
    with ErrorLogs() as errors:
        raw_post(server.port, "/remove-background", body, content_type).close()
        wait_for(lambda: requests_counted("/remove-background", 499) > before["499"])
        wait_for(lambda: server.application.processor.workers.busy == 0)  # its thread is free again
    after_miss = REGISTRY.get_sample_value("bg_remover_cache_requests_total", {"result": "miss"})
    assert (after_miss or 0.0) == before["miss"]  # no result was ever produced
    assert errors.records == []


# --- a starved image pool is visible --------------------------------------------------------


@pytest.fixture
def starving(tmp_path: Path) -> Iterator[tuple[InProcessServer, list[float]]]:
    with InProcessServer(tmp_path) as server:
        now = [0.0]
        workers = ImageWorkers(threads=1, clock=lambda: now[0])
        server.application.processor.workers = workers
        yield server, now


def test_a_starved_image_pool_makes_health_degraded(
    starving: tuple[InProcessServer, list[float]], connect: Connect
) -> None:
    server, now = starving
    client, release = connect(server), threading.Event()
    workers = server.application.processor.workers
    assert client.get("/health").json()["checks"]["image_work"]["ok"] is True
    occupied = threading.Thread(target=lambda: asyncio.run(_hold(workers, release)), daemon=True)
    occupied.start()
    wait_for(lambda: workers.busy == 1 and "1 waiting" in workers.check().detail)
    now[0] += STARVED_AFTER_S + 1
    health = client.get("/health")
    release.set()
    occupied.join(10)
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["checks"]["image_work"]["ok"] is False
    assert client.get("/health").json()["status"] == "healthy"


async def _hold(workers: ImageWorkers, release: threading.Event) -> None:
    """One job holding the only thread, and one waiting behind it."""
    held = asyncio.ensure_future(workers.run(Cancellation(), release.wait, 30))
    waiting = asyncio.ensure_future(workers.run(Cancellation(), lambda: None))
    await asyncio.gather(held, waiting)


# --- one ETag, one set of bytes: masks reused only at the same decode scale -----------------


@pytest.fixture(scope="module")
def uncached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    env = {"CACHE_ENABLED": "false"}
    with InProcessServer(tmp_path_factory.mktemp("uncached"), env=env) as server:
        yield server


def test_a_mask_from_a_reduced_decode_is_not_reused_for_a_full_size_result(
    server: InProcessServer, uncached: InProcessServer, connect: Connect
) -> None:
    """A small box decodes a large JPEG at 1/8 scale; the mask made from it differs from the
    full decode's. Reused for a full-size result, the same strong ETag carried other bytes
    than a fresh server would send."""
    large, client = images.fresh(images.large_jpeg()), connect(server)
    small = remove(client, large, max_width="400")
    full = remove(client, large)
    fresh = remove(connect(uncached), large)
    assert (small.headers["x-cache"], full.headers["x-cache"]) == ("miss", "miss")
    assert full.headers["etag"] == fresh.headers["etag"]
    assert full.content == fresh.content
    again = remove(client, large, format="WEBP")  # full size again: that mask is reused
    assert again.headers["x-cache"] == "mask"
