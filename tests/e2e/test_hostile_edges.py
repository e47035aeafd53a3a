"""Hostile input where only a real `bentoml serve` shows what happens: BentoML's own traffic
metrics, its 504 after the request timeout, its uvicorn without a header deadline, its access
log; and the whole service under a burst of bombs and floods next to a normal photo."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import hostile, images
from tests.answers import assert_ok
from tests.e2e.server import BentoServer
from tests.serving import tree_rss

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    """A 1 s request timeout, 2 s for request heads, no minimum body rate."""
    env = {"REQUEST_TIMEOUT_S": "1", "HEADER_TIMEOUT_S": "2", "BODY_MIN_BYTES_PER_S": "0"}
    with BentoServer(tmp_path_factory.mktemp("edges"), env=env) as server:
        yield server


def metric(server: BentoServer, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def exchange(port: int, request: bytes, timeout_s: float = 30) -> bytes:
    """Send raw bytes; everything the server answers until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def split(answer: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {"status": lines[0]}
    headers.update((k.strip().lower(), v.strip()) for k, v in (x.split(":", 1) for x in lines[1:]))
    return headers, body


# --- BentoML's own metrics: bounded labels ---------------------------------------------------


def test_unknown_paths_do_not_grow_the_metrics(server: BentoServer) -> None:
    """BentoML labels its traffic series with the path; 600 random paths once made 12,000
    series. 400 of them now grow /metrics by less than 64 KB."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for n in range(5):  # every series the unknown-path label has exists afterwards
            client.get(f"/warm-{n}")
        before = len(client.get("/metrics").content)
        for n in range(400):
            assert client.get(f"/no/such/path/{n}-{time.time_ns()}").status_code == 404
        metrics = client.get("/metrics").text
    assert len(metrics.encode()) - before < 64 * 1024
    assert "/no/such/path" not in metrics


# --- BentoML's 504 ----------------------------------------------------------------------------


def test_the_request_timeout_answers_the_contracts_504(edges: BentoServer) -> None:
    """A body still arriving when REQUEST_TIMEOUT_S is over: BentoML's 504, now with a code,
    the request id and the security headers."""
    answer = exchange(
        edges.port,
        b"POST /remove-background HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n",
    )
    headers, body = split(answer)
    assert headers["status"].startswith("HTTP/1.1 504"), answer[:300]
    assert b'"code":"timeout"' in body
    assert len(headers["x-request-id"]) == 16
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value


def test_image_work_past_the_request_timeout_is_cancelled(edges: BentoServer) -> None:
    """A 49 MP progressive JPEG with 64 scans decodes in about 2 s: the 504 comes first, and
    the work is cancelled rather than left to burn its thread."""
    slow = hostile.progressive_jpeg_with_scans(64, side=7000)
    before = metric(edges, "bg_remover_image_work_cancelled_total")
    with httpx.Client(base_url=edges.url, timeout=30) as client:
        response = client.post("/remove-background", files={"file": ("slow.jpg", slow)})
        assert response.status_code == 504, response.text
        assert response.json()["code"] == "timeout"
        deadline = time.monotonic() + 20
        while metric(edges, "bg_remover_image_work_busy_threads") > 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert metric(edges, "bg_remover_image_work_cancelled_total") > before


# --- uvicorn under BentoML: a deadline on request heads --------------------------------------


@pytest.mark.parametrize("request_head", [b"", b"GET /health HTTP/1.1\r\nX-Slow: 1\r\n"])
def test_a_request_head_that_does_not_arrive_is_408(
    edges: BentoServer, request_head: bytes
) -> None:
    started = time.monotonic()
    answer = exchange(edges.port, request_head)
    headers, body = split(answer)
    assert headers["status"].startswith("HTTP/1.1 408"), answer[:200]
    assert headers["connection"] == "close" and b'"code":"request_timeout"' in body
    assert time.monotonic() - started < 10  # HEADER_TIMEOUT_S is 2


# --- answers are complete whatever the Content-Type holds -------------------------------------


def test_a_content_type_with_byte_0xff_gets_a_complete_answer(server: BentoServer) -> None:
    """BentoML's access log decoded the Content-Type strictly after the response had started:
    200 and a Content-Length, then no body at all."""
    body = b'{"image": "%s"}' % base64.b64encode(PHOTO)
    answer = exchange(
        server.port,
        b"POST /remove-background-base64 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json; x=\xff\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
    )
    headers, content = split(answer)
    assert headers["status"].startswith("HTTP/1.1 200"), answer[:300]
    assert len(content) == int(headers["content-length"]) > 0


# --- the log: one line per request, whatever the path says --------------------------------------


def test_a_path_cannot_forge_a_log_line(server: BentoServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/zz%0aFORGED-LOG-LINE%0d%0aMORE").status_code == 404
        marker = client.get("/presets").headers["x-request-id"]  # logged after the first
    deadline = time.monotonic() + 10
    while marker not in (log := server.log_path.read_text(errors="replace")):
        assert time.monotonic() < deadline, "the requests were never logged"
        time.sleep(0.05)
    assert not any(line.startswith(("FORGED", "MORE")) for line in log.splitlines()), (
        "a forged line is in the log"
    )


# --- a burst of bombs and floods next to a normal photo -------------------------------------------


def test_bombs_and_floods_are_answered_while_a_photo_is_served(server: BentoServer) -> None:
    """A scan bomb, a header flood and a JSON flood, three of each at once, next to a normal
    photo: each flood gets its 400 within seconds, the photo its 200, /health stays under a
    second throughout, and the service keeps no memory for them."""
    assert server.process is not None
    pid = server.process.pid
    hostile_requests = {
        "scan bomb": ("file", hostile.scan_bomb_jpeg()),
        "header flood": ("file", hostile.jpeg_segment_flood()),
        "json flood": ("json", hostile.json_flood()),
    }
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert_ok(client.post("/remove-background", files={"file": ("a.jpg", PHOTO)}))
        before = tree_rss(pid)

        def send(kind: str, data: bytes) -> tuple[int, float]:
            started = time.monotonic()
            response = hostile.post(client, kind, data)
            return response.status_code, time.monotonic() - started

        health: list[float] = []
        stop = threading.Event()

        def watch_health() -> None:
            while not stop.is_set():
                started = time.monotonic()
                assert client.get("/health").status_code == 200
                health.append(time.monotonic() - started)
                time.sleep(0.05)

        watcher = threading.Thread(target=watch_health)
        watcher.start()
        with ThreadPoolExecutor(10) as pool:
            photo = pool.submit(send, "file", images.fresh(PHOTO))
            floods = {
                name: [pool.submit(send, *request) for _ in range(3)]
                for name, request in hostile_requests.items()
            }
            answers = {name: [f.result() for f in futures] for name, futures in floods.items()}
            photo_status, _ = photo.result()
        stop.set()
        watcher.join()
        after = tree_rss(pid)
    assert photo_status == 200
    for name, results in answers.items():
        for status, seconds in results:
            assert status == 400, (name, status)
            assert seconds < 10, (name, seconds)
    assert health and max(health) < 1.0, f"slowest /health: {max(health):.2f} s"
    assert after - before < 300 * MIB, f"kept {(after - before) // MIB} MiB"


def test_the_access_log_is_the_services_own(server: BentoServer) -> None:
    """BentoML's access log (raw paths, strict Content-Type decoding) is off; the service
    writes one line per request itself."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        request_id = client.get("/presets").headers["x-request-id"]
    deadline = time.monotonic() + 10
    while request_id not in (log := server.log_path.read_text(errors="replace")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "path=/presets" not in log  # BentoML's access line for the API service
