"""`bg_image` on the service's own routes, through the whole HTTP API in process with the
real u2netp model: a file part on the multipart routes (one background for a whole batch), a
base64 or data-URL member on the JSON route, `bg_image_url` only where ALLOW_IMAGE_URL is on;
the background is part of the result's identity by its bytes, and it is refused clearly."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from tests import images
from tests.answers import assert_error
from tests.integration.image_host import ImageHost, server_fetching_from, serving_images

pytestmark = pytest.mark.slow
CANVAS = "300x200"
RED, BLUE = (220, 20, 30), (20, 40, 200)


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (300, 200)) -> bytes:
    return images.encode(Image.new("RGB", size, colour), "PNG")


def corner(data: bytes) -> tuple[int, ...]:
    """The top-left pixel of a result: the subject is centred, so the background shows."""
    image = Image.open(io.BytesIO(data))
    return tuple(image.convert("RGB").getpixel((2, 2)))


def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 6 for a, b in zip(pixel, colour, strict=True))


def post(
    client: httpx.Client,
    background: bytes | None,
    path: str = "/remove-background",
    **options: str,
) -> httpx.Response:
    files = {"file": ("cat.jpg", images.photo_jpeg("chelsea"))}
    if background is not None:
        files["bg_image"] = ("backdrop.png", background)
    return client.post(path, files=files, data={"canvas": CANVAS, "scale": "60%", **options})


def test_a_background_file_fills_the_canvas(client: httpx.Client) -> None:
    response = post(client, solid(RED), format="jpeg")
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (300, 200)
    assert near(corner(response.content), RED)


def test_a_background_of_another_size_covers_the_canvas(client: httpx.Client) -> None:
    """Scaled to cover and centred: a 100 x 400 picture half red, half blue from top to
    bottom shows red at the canvas's top and blue at its bottom."""
    backdrop = Image.new("RGB", (100, 400), RED)
    backdrop.paste(BLUE, (0, 200, 100, 400))
    response = post(client, images.encode(backdrop, "PNG"))
    result = Image.open(io.BytesIO(response.content)).convert("RGB")
    assert near(result.getpixel((2, 2)), RED) and near(result.getpixel((297, 197)), BLUE)


def test_the_preview_takes_a_background_file(client: httpx.Client) -> None:
    response = post(client, solid(BLUE), "/remove-background-preview")
    assert response.status_code == 200, response.text
    assert near(corner(base64.b64decode(response.json()["image"].split(",")[-1])), BLUE)


@pytest.mark.parametrize("data_url", [False, True])
def test_the_json_route_takes_a_background_in_base64(client: httpx.Client, data_url: bool) -> None:
    encoded = base64.b64encode(solid(RED)).decode()
    body = {
        "image": base64.b64encode(images.photo_jpeg("chelsea")).decode(),
        "bg_image": f"data:image/png;base64,{encoded}" if data_url else encoded,
        "canvas": CANVAS,
        "scale": "60%",
    }
    response = client.post("/remove-background-base64", json=body)
    assert response.status_code == 200, response.text
    assert near(corner(base64.b64decode(response.json()["image"].split(",")[-1])), RED)


def test_one_background_serves_every_file_of_a_batch(client: httpx.Client) -> None:
    files = [("files", (f"{name}.jpg", images.photo_jpeg(name))) for name in ("chelsea", "coffee")]
    files.append(("bg_image", ("backdrop.png", solid(BLUE))))
    response = client.post(
        "/remove-background-batch", files=files, data={"canvas": CANVAS, "scale": "60%"}
    )
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        outputs = [row["output"] for row in manifest["files"]]
        assert [row["status"] for row in manifest["files"]] == ["ok", "ok"]
        assert all(near(corner(archive.read(name)), BLUE) for name in outputs)


def test_the_background_is_part_of_the_result_by_its_bytes(client: httpx.Client) -> None:
    """Another background is another result made from the same mask; the same bytes again
    are the same result."""
    photo_options = {"format": "webp"}
    first = post(client, solid(RED, (320, 200)), **photo_options)
    other = post(client, solid(BLUE, (320, 200)), **photo_options)
    again = post(client, solid(RED, (320, 200)), **photo_options)
    assert [r.headers["x-cache"] for r in (other, again)] == ["mask", "hit"]
    assert first.headers["etag"] == again.headers["etag"] != other.headers["etag"]


@pytest.mark.parametrize(
    ("background", "problem"),
    [
        (images.text_file(), "not a usable image"),
        (images.truncated_png(), "not a usable image"),
        (images.oversized_header_png(), "pixels"),
    ],
)
def test_a_background_that_is_not_a_usable_image_is_refused(
    client: httpx.Client, background: bytes, problem: str
) -> None:
    response = post(client, background)
    status = 413 if problem == "pixels" else 400
    assert response.status_code == status, response.text
    assert "bg_image" in response.json()["details"] or status == 413
    assert client.get("/health").status_code == 200


def test_a_background_image_with_a_background_colour_is_400(client: httpx.Client) -> None:
    response = post(client, solid(RED), bg_color="white")
    assert_error(response, 400, "invalid_parameter")
    assert "bg_image" in response.json()["details"]


def test_a_base64_background_that_is_not_base64_is_400_naming_it(client: httpx.Client) -> None:
    body = {"image": base64.b64encode(images.photo_jpeg("chelsea")).decode(), "bg_image": "!!"}
    response = client.post("/remove-background-base64", json=body)
    assert_error(response, 400, "invalid_parameter")
    assert "bg_image" in response.json()["details"]


def test_a_background_url_is_refused_where_urls_are_off(client: httpx.Client) -> None:
    response = post(client, None, bg_image_url="https://example.com/backdrop.png")
    assert_error(response, 400, "invalid_parameter")
    assert "bg_image_url" in response.json()["details"]


@pytest.fixture(scope="module")
def image_host() -> Iterator[ImageHost]:
    with serving_images() as host:
        host.add("/red.png", solid(RED), "image/png")
        yield host


@pytest.fixture(scope="module")
def url_client(
    tmp_path_factory: pytest.TempPathFactory, image_host: ImageHost
) -> Iterator[httpx.Client]:
    with (
        server_fetching_from(image_host, tmp_path_factory.mktemp("bg-url")) as server,
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        yield client


def test_a_background_url_where_urls_are_on(
    url_client: httpx.Client, image_host: ImageHost
) -> None:
    url = image_host.url("/red.png")
    response = post(url_client, None, bg_image_url=url)
    assert response.status_code == 200, response.text
    assert near(corner(response.content), RED)
    by_file = post(url_client, solid(RED))
    assert by_file.headers["etag"] == response.headers["etag"]  # the same bytes, one result


def test_a_background_sent_twice_is_400(url_client: httpx.Client, image_host: ImageHost) -> None:
    response = post(url_client, solid(RED), bg_image_url=image_host.url("/red.png"))
    assert_error(response, 400, "invalid_parameter")
    assert "bg_image" in response.json()["details"]


def test_a_background_url_that_fails_names_it(
    url_client: httpx.Client, image_host: ImageHost
) -> None:
    response = post(url_client, None, bg_image_url=image_host.url("/missing.png"))
    assert_error(response, 400, "invalid_image")
    assert "bg_image_url" in response.json()["details"]
