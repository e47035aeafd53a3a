"""`/v1.0/removebg` through the whole HTTP API in process: an existing remove.bg client
library pointed at it, and requests shaped exactly as remove.bg documents them."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import remove_bg_api
from PIL import Image

from tests import images
from tests.integration.api_server import InProcessServer

pytestmark = pytest.mark.slow
KEY = "rbg-test-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    env = {"API_KEYS": KEY, "RATE_LIMIT_REMOVE_BG_PER_HOUR": "12"}
    with InProcessServer(tmp_path_factory.mktemp("removebg"), env=env) as running:
        yield running


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120, headers={"X-Api-Key": KEY}) as http:
        yield http


def test_the_remove_bg_api_library_works_against_us(server: InProcessServer) -> None:
    """remove-bg-api (PyPI) reads its server from the module constant API_URL."""
    remove_bg_api.API_URL = f"{server.url}/v1.0"
    library = remove_bg_api.RemoveBg(KEY)  # calls GET /v1.0/account for the balance
    balance = library.account.balance()
    result = library.remove_bg_bytes(images.photo("coffee", "JPEG"), size="full")
    image = Image.open(io.BytesIO(result))
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (600, 400)
    assert library.account.balance() == balance - 1  # it subtracts X-Credits-Charged


def test_documented_multipart_request(client: httpx.Client) -> None:
    response = client.post(
        "/v1.0/removebg",
        files={"image_file": ("cat.jpg", images.photo("chelsea", "JPEG"))},
        data={"size": "auto"},
    )
    assert response.status_code == 200, response.text
    headers = response.headers
    image = Image.open(io.BytesIO(response.content))
    assert (headers["x-width"], headers["x-height"]) == (str(image.width), str(image.height))
    assert headers["x-credits-charged"] == "1" and headers["x-type"]
    assert int(headers["x-foreground-width"]) > 0 and int(headers["x-foreground-height"]) > 0
    assert int(headers["x-ratelimit-remaining"]) < int(headers["x-ratelimit-limit"])


def test_preview_size_is_a_quarter_megapixel(client: httpx.Client) -> None:
    big = images.encode(images.photo_image("astronaut").resize((1600, 1200)), "JPEG")
    response = client.post(
        "/v1.0/removebg", files={"image_file": ("a.jpg", big)}, data={"size": "preview"}
    )
    image = Image.open(io.BytesIO(response.content))
    assert 240_000 <= image.width * image.height <= 250_000
    assert abs(image.width / image.height - 4 / 3) < 0.01


def test_base64_json_request_and_json_response(client: httpx.Client) -> None:
    body = {
        "image_file_b64": base64.b64encode(images.photo("rocket", "PNG")).decode(),
        "size": "full",
        "format": "jpg",
        "bg_color": "81d4fa",
        "crop": True,
    }
    response = client.post("/v1.0/removebg", json=body, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    image = Image.open(io.BytesIO(base64.b64decode(data["result_b64"])))
    assert image.format == "JPEG"
    assert {
        "foreground_top",
        "foreground_left",
        "foreground_width",
        "foreground_height",
    } <= data.keys()
    assert data["foreground_width"] <= image.width


def test_zip_format(client: httpx.Client) -> None:
    response = client.post(
        "/v1.0/removebg",
        files={"image_file": ("c.jpg", images.photo("coffee", "JPEG"))},
        data={"format": "zip", "size": "full"},
    )
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    color = Image.open(io.BytesIO(archive.read("color.jpg")))
    alpha = Image.open(io.BytesIO(archive.read("alpha.png")))
    assert color.size == alpha.size == (600, 400) and alpha.mode == "L"


def test_alpha_channel(client: httpx.Client) -> None:
    response = client.post(
        "/v1.0/removebg",
        files={"image_file": ("c.jpg", images.photo("coffee", "JPEG"))},
        data={"channels": "alpha", "format": "png", "size": "full"},
    )
    assert Image.open(io.BytesIO(response.content)).mode == "L"


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        ({"data": {"size": "full"}}, 400),
        ({"data": {"image_url": "http://127.0.0.1/a.png"}}, 400),
        ({"files": {"image_file": ("t.txt", b"hello")}}, 415),
        ({"files": {"image_file": ("a.jpg", b"x")}, "data": {"size": "gigantic"}}, 400),
    ],
)
def test_errors_in_remove_bg_shape(client: httpx.Client, request_kwargs: dict, status: int) -> None:
    response = client.post("/v1.0/removebg", **request_kwargs)
    assert response.status_code == status
    errors = response.json()["errors"]
    assert errors and {"title", "code", "detail"} <= errors[0].keys()


def test_wrong_key_is_401_in_remove_bg_shape(server: InProcessServer) -> None:
    response = httpx.post(
        f"{server.url}/v1.0/removebg",
        headers={"X-Api-Key": "nope"},
        files={"image_file": ("c.jpg", images.photo("coffee", "JPEG"))},
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "unauthorized"


def test_budget_is_shared_with_remove_background(client: httpx.Client) -> None:
    before = client.get("/v1.0/account").json()["data"]["attributes"]["credits"]["total"]
    client.post("/remove-background", files={"file": ("c.jpg", images.photo("chelsea", "JPEG"))})
    after = client.get("/v1.0/account").json()["data"]["attributes"]["credits"]["total"]
    assert after == before - 1


def test_image_url_enabled_still_refuses_private_addresses(tmp_path: Path) -> None:
    with InProcessServer(tmp_path, env={"ALLOW_IMAGE_URL": "true"}) as server:
        for url in (
            "http://127.0.0.1:1/a.png",
            "http://localhost/a.png",
            "http://169.254.169.254/latest/meta-data",
            "ftp://example.com/a.png",
        ):
            response = httpx.post(
                f"{server.url}/v1.0/removebg", data={"image_url": url}, timeout=30
            )
            assert response.status_code == 400, (url, response.text)
            assert response.json()["errors"][0]["code"] == "invalid_parameter"
