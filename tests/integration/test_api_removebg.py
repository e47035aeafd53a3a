"""`/v1.0/*` through the whole HTTP API in process, requests shaped as remove.bg documents
them: each `size` (the 10 MP cap of a full-size PNG, 50MP), credits against `/v1.0/account`,
`format=auto` by the result's transparency, `type_level=none`, `unknown_foreground`, keys,
the edge's refusals in remove.bg's shape, background images, `/v1.0/improve`; and the same
judgement of a subject as `X-Foreground-Coverage` on the native routes. (Every parameter and
error is also checked against remove.bg's OpenAPI document in test_removebg_conformance.py,
and remove.bg's own clients run in test_removebg_clients.py.)"""

from __future__ import annotations

import base64
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests import images
from tests.integration.api_server import InProcessServer

pytestmark = pytest.mark.slow
KEY = "rbg-test-key"
PHOTO = images.photo("chelsea", "JPEG")  # 451 x 300
WALL = images.encode(Image.new("RGB", (640, 480), (205, 200, 190)), "PNG")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    env = {"API_KEYS": KEY, "MAX_CONTENT_LENGTH": "2000000"}
    with InProcessServer(tmp_path_factory.mktemp("removebg"), env=env) as running:
        yield running


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120, headers={"X-Api-Key": KEY}) as http:
        yield http


def post(client: httpx.Client, photo: bytes = PHOTO, **data: str) -> httpx.Response:
    return client.post("/v1.0/removebg", files={"image_file": ("p.jpg", photo)}, data=data)


def image_of(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))


def code(response: httpx.Response) -> str:
    return response.json()["errors"][0]["code"]


# --- sizes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "pixels"),
    [("preview", 250_000), ("small", 250_000), ("regular", 250_000), ("medium", 1_500_000)],
)
def test_sizes_below_the_photo(client: httpx.Client, size: str, pixels: int) -> None:
    big = images.encode(images.photo_image("astronaut").resize((1600, 1200)), "JPEG")
    image = image_of(post(client, big, size=size))
    assert 0.96 * pixels <= image.width * image.height <= pixels
    assert abs(image.width / image.height - 4 / 3) < 0.01


@pytest.mark.parametrize("size", ["hd", "full", "4k", "auto", "50MP"])
def test_sizes_above_the_photo_keep_it(client: httpx.Client, size: str) -> None:
    assert image_of(post(client, size=size)).size == (451, 300)  # never upscaled


def test_full_size_png_is_capped_at_10_megapixels_and_50mp_is_not(client: httpx.Client) -> None:
    twelve = images.encode(images.photo_image("coffee").resize((4200, 2800)), "JPEG", quality=85)
    png = image_of(post(client, twelve, size="full", format="png"))
    assert png.format == "PNG" and 9_900_000 <= png.width * png.height <= 10_000_000
    jpg = image_of(post(client, twelve, size="full", format="jpg"))
    assert jpg.format == "JPEG" and jpg.size == (4200, 2800)
    fifty = image_of(post(client, twelve, size="50MP", format="png"))
    assert fifty.size == (4200, 2800)


# --- credits ---------------------------------------------------------------------------------


def credits_left(client: httpx.Client) -> float:
    response = client.get("/v1.0/account")
    assert response.status_code == 200, response.text
    attributes = response.json()["data"]["attributes"]
    assert attributes["api"]["free_calls"] == int(attributes["credits"]["total"])
    return attributes["credits"]["total"]


def test_credits_are_charged_to_the_quarter(tmp_path: Path) -> None:
    env = {"API_KEYS": KEY, "RATE_LIMIT_REMOVE_BG_PER_HOUR": "3"}
    with (
        InProcessServer(tmp_path, env=env) as server,
        httpx.Client(base_url=server.url, timeout=120, headers={"X-Api-Key": KEY}) as client,
    ):
        assert credits_left(client) == 3
        preview = post(client, size="preview")
        assert preview.headers["x-credits-charged"] == "0.25"
        assert preview.headers["x-ratelimit-limit"] == "3"
        assert preview.headers["x-ratelimit-remaining"] == "2.75"
        assert credits_left(client) == 2.75
        full = post(client, size="full")
        assert full.headers["x-credits-charged"] == "1" and credits_left(client) == 1.75
        assert code(post(client, size="gigantic")) == "invalid_size"
        assert credits_left(client) == 1.75  # a bad parameter costs nothing
        native = client.post("/remove-background", files={"file": ("p.jpg", PHOTO)})
        assert native.headers["x-ratelimit-remaining"] == "0.75"  # the same budget
        refused = post(client, size="hd")  # needs 1, 0.75 left
        assert refused.status_code == 429 and code(refused) == "rate_limit_exceeded"
        assert int(refused.headers["retry-after"]) > 0
        assert credits_left(client) == 0.75  # nothing spent by the refusal
        assert post(client, size="preview").status_code == 200
        assert credits_left(client) == 0.5


# --- format, type, subject -------------------------------------------------------------------


def test_auto_format_follows_the_results_transparency(client: httpx.Client) -> None:
    assert image_of(post(client, size="full")).format == "PNG"
    assert image_of(post(client, size="full", bg_color="81d4fa")).format == "JPEG"
    assert image_of(post(client, size="full", bg_color="81d4fa80")).format == "PNG"
    assert image_of(post(client, size="full", channels="alpha")).format == "JPEG"


def test_type_level_none_sends_no_x_type(client: httpx.Client) -> None:
    named = post(client, type="animal")
    assert named.headers["x-type"] == "animal"
    silent = post(client, type="animal", type_level="none")
    assert silent.status_code == 200 and "x-type" not in silent.headers


def test_no_subject_in_a_flat_image_but_one_in_a_photo(client: httpx.Client) -> None:
    flat = post(client, WALL, size="full")
    assert flat.status_code == 400 and code(flat) == "unknown_foreground"
    zipped = post(client, WALL, format="zip")
    assert zipped.status_code == 400 and code(zipped) == "unknown_foreground"
    assert post(client, size="full").status_code == 200


def test_native_routes_tell_the_same_judgement_in_a_header(client: httpx.Client) -> None:
    photo = client.post("/remove-background", files={"file": ("p.jpg", PHOTO)})
    wall = client.post("/remove-background", files={"file": ("w.png", WALL)})
    assert photo.status_code == wall.status_code == 200  # the native route answers anyway
    assert float(photo.headers["x-foreground-coverage"]) > 0.1
    assert float(wall.headers["x-foreground-coverage"]) < 0.001
    preview = client.post("/remove-background-preview", files={"file": ("w.png", WALL)})
    assert float(preview.headers["x-foreground-coverage"]) < 0.001


# --- keys and the edge's own refusals ----------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"X-Api-Key": "nope"}, {"Authorization": "Bearer nope"}], ids=str
)
def test_a_missing_or_wrong_key_is_403(server: InProcessServer, headers: dict[str, str]) -> None:
    response = httpx.post(
        f"{server.url}/v1.0/removebg", headers=headers, files={"image_file": ("p.jpg", PHOTO)}
    )
    assert response.status_code == 403 and code(response) == "auth_failed"
    native = httpx.post(f"{server.url}/remove-background", headers=headers)
    assert native.status_code == 401  # the native routes keep their status


def test_a_bearer_token_is_a_key_on_remove_bgs_api_only(server: InProcessServer) -> None:
    bearer = {"Authorization": f"Bearer {KEY}"}
    files = {"image_file": ("p.jpg", PHOTO)}
    response = httpx.post(f"{server.url}/v1.0/removebg", headers=bearer, files=files)
    assert response.status_code == 200
    native = httpx.get(f"{server.url}/presets", headers=bearer)
    assert native.status_code == 401


def test_a_body_over_the_limit_is_file_too_large(client: httpx.Client) -> None:
    response = post(client, b"\xff\xd8" + bytes(2_100_000))
    assert response.status_code == 400 and code(response) == "file_too_large"
    native = client.post("/remove-background", files={"file": ("p.jpg", bytes(2_100_000))})
    assert native.status_code == 413


def test_a_text_file_is_invalid_file_type(client: httpx.Client) -> None:
    response = post(client, b"just some text, no image")
    assert response.status_code == 400 and code(response) == "invalid_file_type"


# --- results ---------------------------------------------------------------------------------


def test_documented_multipart_request(client: httpx.Client) -> None:
    response = post(client, size="auto")
    image = image_of(response)
    headers = response.headers
    assert (headers["x-width"], headers["x-height"]) == (str(image.width), str(image.height))
    assert int(headers["x-foreground-width"]) > 0 and int(headers["x-foreground-height"]) > 0


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
    assert image.format == "JPEG" and data["foreground_width"] <= image.width


def test_zip_colours_and_matte(client: httpx.Client) -> None:
    response = post(client, format="zip", size="full")
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    color = Image.open(io.BytesIO(archive.read("color.jpg")))
    alpha = Image.open(io.BytesIO(archive.read("alpha.png")))
    assert color.size == alpha.size == (451, 300) and alpha.mode == "L"


def test_a_background_file_and_a_drop_shadow(client: httpx.Client) -> None:
    backdrop = images.encode(Image.new("RGB", (451, 300), (10, 20, 200)), "PNG")
    response = client.post(
        "/v1.0/removebg",
        files={"image_file": ("p.jpg", PHOTO), "bg_image_file": ("b.png", backdrop)},
        data={"size": "full", "scale": "50%", "position": "0% 0%", "add_shadow": "true"},
    )
    image = image_of(response).convert("RGB")
    assert image.format is None or image.size == (451, 300)
    corner = image.getpixel((440, 290))  # far from the subject: the backdrop
    assert max(abs(a - b) for a, b in zip(corner, (10, 20, 200), strict=True)) < 10
    both = client.post(
        "/v1.0/removebg",
        files={"image_file": ("p.jpg", PHOTO), "bg_image_file": ("b.png", backdrop)},
        data={"bg_color": "red"},
    )
    assert both.status_code == 400 and code(both) == "multiple_bg_sources"
    broken = client.post(
        "/v1.0/removebg",
        files={"image_file": ("p.jpg", PHOTO), "bg_image_file": ("b.png", b"not an image")},
    )
    assert broken.status_code == 400 and code(broken) == "invalid_bg_image_file"


# --- /v1.0/improve ---------------------------------------------------------------------------


def test_improve_stores_the_image_and_its_tag(
    server: InProcessServer, client: httpx.Client
) -> None:
    response = client.post(
        "/v1.0/improve",
        files={"image_file": ("hair.jpg", PHOTO)},
        data={"tag": "batch_1", "image_filename": "hard-hair.jpg"},
    )
    assert response.status_code == 200, response.text
    submission = response.json()["id"]
    assert str(uuid.UUID(submission)) == submission
    folder = Path(server.env["UPLOAD_DIR"]) / "improve"
    assert (folder / f"{submission}.jpg").read_bytes() == PHOTO
    details = json.loads((folder / f"{submission}.json").read_text())
    assert details["tag"] == "batch_1" and details["filename"] == "hard-hair.jpg"
    b64 = client.post("/v1.0/improve", json={"image_file_b64": base64.b64encode(PHOTO).decode()})
    assert b64.status_code == 200 and b64.json()["id"] != submission
    assert code(client.post("/v1.0/improve", data={"tag": "x"})) == "missing_source"
    text = client.post("/v1.0/improve", files={"image_file": ("a.txt", b"no image")})
    assert text.status_code == 400 and code(text) == "invalid_file_type"


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
            assert code(response) == "invalid_image_url"
