"""Hostile but cheap input against the whole HTTP API in process: slow uploads, deep JSON,
wrong JSON shapes, images too heavy for the memory budget, spoofable identities. Each gets a
4xx or a 503 with Retry-After, never a 500, and the service keeps serving."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import httpx
import pytest

from tests import images
from tests.integration.api_server import InProcessServer
from tests.serving import Connect
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")
JSON_ROUTES = ("/remove-background-base64", "/read-file", "/v1.0/removebg")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """Two requests in flight at most, heads due within 2 s and bodies within 3 s, a trusted
    proxy on loopback."""
    env = {
        "MAX_CONCURRENCY": "2",
        "HEADER_TIMEOUT_S": "2",
        "BODY_TIMEOUT_S": "3",
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "RATE_LIMIT_PREVIEW_PER_HOUR": "3",
        "ALLOW_IMAGE_URL": "true",
    }
    with InProcessServer(tmp_path_factory.mktemp("guarded"), env=env) as server:
        yield server


def remove(
    client: httpx.Client, data: bytes = PHOTO, path: str = "/remove-background", **options: str
) -> httpx.Response:
    return client.post(path, files={"file": ("photo.jpg", data)}, data=options)


def trickle(port: int, stop: threading.Event) -> bytes:
    """Start a 100 kB multipart upload and send a few bytes every half second; return what
    the server answered before it closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /remove-background HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; "
            b'name="file"; filename="slow.jpg"\r\n\r\n'
        )
        answer = b""
        sock.settimeout(0.5)
        while not stop.is_set():
            try:
                sock.sendall(b"x" * 10)
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
        return answer


def test_trickling_uploads_hold_no_slot_and_are_cut_with_408(
    guarded: InProcessServer, connect: Connect
) -> None:
    stop = threading.Event()
    before = guarded.requests_received()
    with ThreadPoolExecutor(4) as pool:
        tricklers = [pool.submit(trickle, guarded.port, stop) for _ in range(4)]
        # All four are mid-body, more than MAX_CONCURRENCY, before the real request is sent.
        wait_until(lambda: guarded.requests_received() == before + 4, 10, "four uploads begun")
        started = time.monotonic()
        response = remove(connect(guarded))
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < 10
        answers = [trickler.result(timeout=20) for trickler in tricklers]
        stop.set()
    for answer in answers:
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 408"), answer[:200]
        assert b"connection: close" in head
        assert b'"code":"request_timeout"' in answer.replace(b" ", b"")


def slow_head(port: int, lines: list[bytes], pause_s: float) -> tuple[bytes, float]:
    """Send a request head a line at a time (nothing at all for no lines); return what the
    server answered and when the connection ended."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        started = time.monotonic()
        answer = b""
        sock.settimeout(pause_s)
        for line in lines:
            with contextlib.suppress(OSError):
                sock.sendall(line)
            try:
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            if answer:
                break
        sock.settimeout(30)
        while chunk := sock.recv(65536):
            answer += chunk
        return answer, time.monotonic() - started


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [b"GET /health HTTP/1.1\r\n"] + [b"X-Slow: %d\r\n" % n for n in range(20)],
    ],
    ids=["silent", "a header line every second"],
)
def test_a_slow_request_head_is_408_and_the_connection_closed(
    guarded: InProcessServer, lines: list[bytes]
) -> None:
    answer, lasted = slow_head(guarded.port, lines, pause_s=1.0)
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 408"), answer[:200]
    assert b"connection: close" in head
    assert b'"code":"request_timeout"' in answer
    assert lasted < 10  # HEADER_TIMEOUT_S is 2; without it the connection stayed open


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, and nothing of the next."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_kept_alive_connection_gets_the_head_deadline_for_each_request(
    guarded: InProcessServer,
) -> None:
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=30) as sock:
        sock.sendall(b"GET /presets HTTP/1.1\r\nHost: x\r\n\r\n")
        first = read_response(sock)
        assert first.startswith(b"HTTP/1.1 200"), first[:100]
        sock.sendall(b"GET /presets HTTP/1.1\r\n")  # and then no more
        second = b""
        while chunk := sock.recv(65536):
            second += chunk
    assert second.startswith(b"HTTP/1.1 408"), second[:100]


@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize(
    "body",
    [b"[" * 200_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000, b"[1, 2]", b'"text"', b"{broken"],
)
def test_json_that_is_deep_broken_or_not_an_object_is_400(
    guarded: InProcessServer, connect: Connect, route: str, body: bytes
) -> None:
    response = connect(guarded).post(
        route, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text[:300]
    assert "invalid_parameter" in response.text


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"image_file": "x"}, "image_file must be a file upload"),
        ({"image_url": 5}, "image_url must be a string"),
        ({"image_url": "http://example.com/a.png", "image_file_b64": "AAAA"}, "one image source"),
        ({"image_file_b64": "AAAA", "size": ["full"]}, "single values"),
        ({"image_file_b64": "AAAA", "bg_color": {"r": 1}}, "single values"),
    ],
)
def test_wrong_removebg_json_shapes_are_400(
    guarded: InProcessServer, connect: Connect, body: dict, details: str
) -> None:
    response = connect(guarded).post("/v1.0/removebg", json=body)
    assert response.status_code == 400, response.text
    assert details in response.json()["errors"][0]["detail"]


@pytest.mark.parametrize(
    "options", [{"quality": [80]}, {"format": {"a": "PNG"}}, {"crop": [[[[True]]]]}]
)
def test_options_must_be_single_values(
    guarded: InProcessServer, connect: Connect, options: dict
) -> None:
    body = {"image": base64.b64encode(PHOTO).decode(), **options}
    response = connect(guarded).post("/remove-background-base64", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_parameter"


def test_ipv6_clients_behind_a_proxy_share_a_budget_per_64(
    guarded: InProcessServer, connect: Connect
) -> None:
    proxy = connect(guarded, "127.0.0.1")

    def preview_from(address: str) -> int:
        return proxy.post(
            "/remove-background-preview",
            files={"file": ("a.jpg", PHOTO)},
            headers={"X-Forwarded-For": address},
        ).status_code

    addresses = [f"2001:db8:7:7::{n}" for n in range(1, 4)] + ["2001:db8:7:7:ffff::9"]
    assert [preview_from(address) for address in addresses] == [200, 200, 200, 429]
    assert preview_from("2001:db8:7:8::1") == 200  # the next /64 is another client


def test_metrics_are_not_open_to_private_networks_by_default(
    guarded: InProcessServer, connect: Connect
) -> None:
    proxy = connect(guarded, "127.0.0.1")
    for address in ("10.1.2.3", "192.168.1.5", "172.16.0.9", "fd00::5"):
        response = proxy.get("/metrics", headers={"X-Forwarded-For": address})
        assert response.status_code == 403, address
        assert response.json()["code"] == "forbidden"


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """A 300 MiB memory budget: one 12 MP photo at a time, 25 MP never."""
    env = {"MEMORY_BUDGET_MB": "300", "MEMORY_WAIT_S": "0.05", "BATCH_PARALLELISM": "4"}
    with InProcessServer(tmp_path_factory.mktemp("tight"), env=env) as server:
        yield server


def test_an_image_that_can_never_fit_is_413(tight: InProcessServer, connect: Connect) -> None:
    huge = images.encode(images.photo_image("coffee").resize((5000, 5000)), "PNG", compress_level=1)
    response = remove(connect(tight), huge)
    assert response.status_code == 413, response.text
    assert "MiB" in response.json()["details"]


def test_work_over_the_budget_is_503_with_retry_after_then_serves(
    tight: InProcessServer, connect: Connect
) -> None:
    large = images.large_jpeg()  # 12 MP: about 250 MiB of work, so one at a time
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: remove(connect(tight), images.fresh(large)), range(3)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses[0] == 200 and statuses[-1] == 503, statuses
    for answer in answers:
        if answer.status_code == 503:
            assert answer.json()["code"] == "overloaded"
            assert int(answer.headers["Retry-After"]) >= 1
    assert remove(connect(tight)).status_code == 200


def test_a_batch_waits_for_room_file_by_file(tight: InProcessServer, connect: Connect) -> None:
    """Three 12 MP files need about 750 MiB at once; with room for one at a time, they are
    admitted one after the other and all succeed."""
    files = [("files", (f"big{n}.jpg", images.fresh(images.large_jpeg()))) for n in range(3)]
    response = connect(tight).post("/remove-background-batch", files=files)
    assert response.status_code == 200, response.text
    manifest = json.loads(zipfile.ZipFile(BytesIO(response.content)).read("manifest.json"))
    assert [row["status"] for row in manifest["files"]] == ["ok", "ok", "ok"]


def test_health_answers_fast_while_a_batch_of_12mp_images_is_zipped(
    server: InProcessServer, client: httpx.Client, tmp_path: Path
) -> None:
    files = [("files", (f"big{n}.jpg", images.fresh(images.large_jpeg()))) for n in range(4)]
    result: list[int] = []

    def batch() -> None:
        with httpx.Client(base_url=server.url, timeout=300) as own:
            result.append(
                own.post(
                    "/remove-background-batch", files=files, data={"format": "PNG"}
                ).status_code
            )

    worker = threading.Thread(target=batch)
    worker.start()
    wait_until(lambda: server.admitted_bytes() > 0, 60, "the batch's photos admitted")
    latencies = []
    while worker.is_alive():
        started = time.perf_counter()
        assert client.get("/health").status_code == 200
        latencies.append(time.perf_counter() - started)
        time.sleep(0.05)
    worker.join()
    assert result == [200]
    assert len(latencies) >= 5
    assert max(latencies) < 0.5, f"slowest /health during the batch: {max(latencies):.2f}s"
