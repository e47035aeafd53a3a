"""What only the two-process layout shows, on the session's real `bentoml serve`: concurrent
requests batched across the hop from the API service to the model service, every route answering
through BentoML's wiring, and BentoML's uvicorn believing no forwarding header from 127.0.0.1.
The routes' behaviour itself is tested in process (tests/integration)."""

from __future__ import annotations

import base64
import io
import threading
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import images
from tests.answers import assert_cutout
from tests.e2e.server import BentoServer
from tests.serving import Connect

pytestmark = pytest.mark.slow

CONCURRENT_REQUESTS = 6
MEGAPIXEL = (1200, 900)
PHOTO = images.photo("chelsea", "JPEG")
PHOTO_B64 = base64.b64encode(PHOTO).decode()
PHOTO_SIZE = images.photo_image("chelsea").size
PROXY = "127.0.0.1"
Sample = tuple[str, dict[str, str], float]


def megapixel_photos() -> list[bytes]:
    """~1 MP JPEGs, the size of a typical upload (the four photos in turn): decoding them
    takes long enough that requests reach the model service spread out, not in lockstep."""
    photos = [
        images.encode(images.photo_image(name).resize(MEGAPIXEL), "JPEG", quality=90)
        for name in images.PHOTO_NAMES
    ]
    return [photos[n % len(photos)] for n in range(CONCURRENT_REQUESTS)]


def scrape(server: BentoServer) -> list[Sample]:
    response = httpx.get(f"{server.url}/metrics", timeout=10)  # from 127.0.0.1
    assert response.status_code == 200, response.text
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def total(samples: list[Sample], name: str, le: float | None = None) -> float:
    """Sum of the samples called `name` (of the histogram bucket `le`, when given)."""
    return sum(
        value
        for sample, labels, value in samples
        if sample == name and (le is None or float(labels["le"]) == le)
    )


# --- batching across the hop -----------------------------------------------------------------


def test_concurrent_requests_are_batched_for_the_model(
    server: BentoServer, connect: Connect
) -> None:
    """Requests that reach the model service together are run as one batch: BentoML's
    adaptive batching only exists between the two services."""
    photos = megapixel_photos()
    clients = [connect(server) for _ in photos]
    barrier = threading.Barrier(len(photos))

    def post(client: httpx.Client, photo: bytes) -> httpx.Response:
        barrier.wait()
        return client.post("/remove-background", files={"file": ("photo.jpg", photo)})

    before = scrape(server)
    with ThreadPoolExecutor(len(photos)) as pool:
        responses = list(pool.map(post, clients, photos))
    after = scrape(server)

    assert [response.status_code for response in responses] == [200] * len(photos), [
        response.text for response in responses if response.status_code != 200
    ]
    assert {response.headers["content-type"] for response in responses} == {"image/png"}

    def delta(name: str, le: float | None = None) -> float:
        return total(after, name, le) - total(before, name, le)

    model_calls = delta("bg_remover_inference_batch_size_count")
    single_image_calls = delta("bg_remover_inference_batch_size_bucket", le=1.0)
    assert delta("bg_remover_inference_batch_size_sum") == len(photos)  # each image once
    assert model_calls - single_image_calls >= 1, (model_calls, single_image_calls)


# --- every route through BentoML's wiring ----------------------------------------------------


def upload(path: str, field: str = "file") -> Callable[[httpx.Client], httpx.Response]:
    return lambda client: client.post(path, files={field: ("cat.jpg", PHOTO, "image/jpeg")})


ROUTES: dict[str, tuple[Callable[[httpx.Client], httpx.Response], str]] = {
    "/remove-background": (upload("/remove-background"), "image/png"),
    "/remove-background-preview": (upload("/remove-background-preview"), "application/json"),
    "/remove-background-base64": (
        lambda client: client.post("/remove-background-base64", json={"image": PHOTO_B64}),
        "application/json",
    ),
    "/remove-background-batch": (upload("/remove-background-batch", "files"), "application/zip"),
    "/read-file": (
        lambda client: client.post("/read-file", json={"path": "cat.jpg"}),
        "application/json",
    ),
    "/v1.0/removebg": (upload("/v1.0/removebg", "image_file"), "image/"),
    "/v1.0/account": (lambda client: client.get("/v1.0/account"), "application/json"),
    "/presets": (lambda client: client.get("/presets"), "application/json"),
    "/models": (lambda client: client.get("/models"), "application/json"),
    "/health": (lambda client: client.get("/health"), "application/json"),
}


def cutout_in_json(response: httpx.Response) -> None:
    assert_cutout(base64.b64decode(response.json()["image"]), PHOTO_SIZE)


def cutout_in_zip(response: httpx.Response) -> None:
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    results = [name for name in archive.namelist() if name != "manifest.json"]
    assert len(results) == 1, archive.namelist()
    assert_cutout(archive.read(results[0]), PHOTO_SIZE)


def cutout(response: httpx.Response) -> None:
    assert_cutout(response.content, PHOTO_SIZE)


def the_uploaded_file(response: httpx.Response) -> None:
    assert base64.b64decode(response.json()["image"]) == PHOTO


def credits(response: httpx.Response) -> None:
    assert response.json()["data"]["attributes"]["credits"]["total"] >= 0


def presets(response: httpx.Response) -> None:
    assert {"web", "thumbnail"} <= response.json().keys()


def models(response: httpx.Response) -> None:
    """Listed by the model service, over the hop."""
    body = response.json()
    assert body["default"] == "u2netp"
    assert "u2netp" in [model["name"] for model in body["models"]]


def healthy_with_the_model(response: httpx.Response) -> None:
    body = response.json()
    assert body["status"] == "healthy" and body["checks"]["model"]["ok"] is True, body


CONTENT: dict[str, Callable[[httpx.Response], None]] = {
    "/remove-background": cutout,
    "/remove-background-preview": cutout_in_json,
    "/remove-background-base64": cutout_in_json,
    "/remove-background-batch": cutout_in_zip,
    "/read-file": the_uploaded_file,
    "/v1.0/removebg": cutout,
    "/v1.0/account": credits,
    "/presets": presets,
    "/models": models,
    "/health": healthy_with_the_model,
}


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_answers(
    server: BentoServer, connect: Connect, upload_dir: Path, route: str
) -> None:
    (upload_dir / "cat.jpg").write_bytes(PHOTO)
    send, media_type = ROUTES[route]
    response = send(connect(server))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media_type), response.headers
    CONTENT[route](response)


# --- who the client is -----------------------------------------------------------------------


def test_uvicorn_believes_no_forwarding_header_from_loopback(
    server: BentoServer, connect: Connect, upload_dir: Path
) -> None:
    """uvicorn, as `bentoml serve` runs it, takes X-Forwarded-For from 127.0.0.1 as the client
    unless FORWARDED_ALLOW_IPS says otherwise; only TRUSTED_PROXIES (none here) may decide who
    the client is. So every request from 127.0.0.1 spends 127.0.0.1's one budget, whatever
    address it claims."""
    (upload_dir / "cat.jpg").write_bytes(PHOTO)
    client = connect(server, PROXY)
    claims = [{}, *({"X-Forwarded-For": f"198.51.100.{n}"} for n in range(1, 4))]
    remaining = []
    for headers in claims:
        response = client.post("/read-file", json={"path": "cat.jpg"}, headers=headers)
        assert response.status_code == 200, response.text
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
    assert remaining == [remaining[0] - n for n in range(len(claims))], remaining
