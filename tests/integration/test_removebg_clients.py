"""remove.bg's own clients, unchanged, against the service in process: the npm client
`remove.bg` 1.3.0 (in node, its hard-coded host redirected by a preload) and the PyPI client
`remove-bg-api` 0.2.1 (its `API_URL` constant pointed here). Each through a file, base64 and an
image URL, with remove.bg's geometry, background, channel and size parameters, and an error.

The npm client sends JSON (base64, URL) and multipart (file); the PyPI one sends form-encoded
fields (base64, URL) and multipart (file): between them, every body remove.bg accepts.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import remove_bg_api
from PIL import Image

from tests import images
from tests.clients.npm import call_node_client
from tests.integration.api_server import InProcessServer
from tests.integration.image_host import ImageHost, server_fetching_from, serving_images

pytestmark = pytest.mark.slow
KEY = "clients-test-key"
PHOTO = "chelsea"  # 451 x 300
PHOTO_SIZE = (451, 300)


@pytest.fixture(scope="module")
def image_host() -> Iterator[ImageHost]:
    with serving_images() as host:
        host.add("/cat.jpg", images.photo(PHOTO, "JPEG"))
        host.add("/backdrop.jpg", images.photo("coffee", "JPEG"))
        yield host


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, image_host: ImageHost
) -> Iterator[InProcessServer]:
    workdir = tmp_path_factory.mktemp("clients")
    with server_fetching_from(image_host, workdir, {"API_KEYS": KEY}) as running:
        yield running


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "cat.jpg"
    path.write_bytes(images.photo(PHOTO, "JPEG"))
    return path


def decoded(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def opaque_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    return image.getchannel("A").point(lambda value: 255 if value > 127 else 0).getbbox()


# --- the npm client ------------------------------------------------------------------------


def node(server: InProcessServer, source: str, **options: Any) -> dict[str, Any]:
    return call_node_client(server.url, source, {"apiKey": KEY, **options})


def resolved(answer: dict[str, Any]) -> dict[str, Any]:
    assert "resolved" in answer, answer
    return answer["resolved"]


def test_npm_client_from_a_file_at_full_size(server: InProcessServer, photo_file: Path) -> None:
    result = resolved(node(server, "file", path=str(photo_file), size="full"))
    image = decoded(result["base64img"])
    assert image.format == "PNG" and image.mode == "RGBA"  # auto: transparent, so PNG
    assert image.size == PHOTO_SIZE
    assert (result["resultWidth"], result["resultHeight"]) == ("451", "300")
    assert result["creditsCharged"] == "1"
    assert result["detectedType"] == "other"
    assert int(result["rateLimitRemaining"]) < int(result["rateLimit"])


def test_npm_client_from_base64_at_preview_size_costs_a_quarter(server: InProcessServer) -> None:
    big = images.encode(images.photo_image("astronaut").resize((1600, 1200)), "JPEG")
    result = resolved(node(server, "base64", base64img=base64.b64encode(big).decode()))
    image = decoded(result["base64img"])  # the client's default size: preview
    assert 240_000 <= image.width * image.height <= 250_000
    assert result["creditsCharged"] == "0.25"


def test_npm_client_from_a_url_cropped_on_a_colour(
    server: InProcessServer, image_host: ImageHost
) -> None:
    answer = node(
        server, "url", url=image_host.url("/cat.jpg"), size="full", crop=True, bg_color="81d4fa"
    )
    image = decoded(resolved(answer)["base64img"])
    assert image.format == "JPEG"  # auto: an opaque background, so JPG
    assert image.width < PHOTO_SIZE[0] and image.height <= PHOTO_SIZE[1]
    corner = image.convert("RGB").getpixel((0, 0))
    assert max(abs(a - b) for a, b in zip(corner, (0x81, 0xD4, 0xFA), strict=True)) < 12


def test_npm_client_scales_and_positions_the_subject(
    server: InProcessServer, photo_file: Path
) -> None:
    placed = {"path": str(photo_file), "size": "full", "scale": "50%"}
    centred = decoded(resolved(node(server, "file", **placed))["base64img"])
    cornered = decoded(resolved(node(server, "file", **placed, position="0% 0%"))["base64img"])
    assert centred.size == cornered.size == PHOTO_SIZE
    left, top, right, bottom = opaque_box(centred) or (0, 0, 0, 0)
    assert max((right - left) / PHOTO_SIZE[0], (bottom - top) / PHOTO_SIZE[1]) < 0.55
    assert abs((left + right) / 2 - PHOTO_SIZE[0] / 2) < 0.05 * PHOTO_SIZE[0]
    corner_box = opaque_box(cornered)
    assert corner_box is not None and corner_box[0] <= 3 and corner_box[1] <= 3


def test_npm_client_alpha_channel(server: InProcessServer, photo_file: Path) -> None:
    answer = node(server, "file", path=str(photo_file), size="full", channels="alpha")
    image = decoded(resolved(answer)["base64img"])
    assert image.mode == "L" and image.size == PHOTO_SIZE


def test_npm_client_gets_remove_bg_errors(server: InProcessServer, photo_file: Path) -> None:
    answer = node(server, "file", path=str(photo_file), size="gigantic")
    assert answer["rejected"][0]["code"] == "invalid_size"
    assert {"title", "code", "detail"} <= answer["rejected"][0].keys()
    wrong_key = call_node_client(
        server.url, "file", {"apiKey": "not-a-key", "path": str(photo_file)}
    )
    assert wrong_key["rejected"][0]["code"] == "auth_failed"


def test_npm_client_is_told_there_is_no_subject(server: InProcessServer) -> None:
    wall = images.encode(Image.new("RGB", (640, 480), "lightgrey"), "PNG")
    answer = node(server, "base64", base64img=base64.b64encode(wall).decode())
    assert answer["rejected"][0]["code"] == "unknown_foreground"


# --- the PyPI client -------------------------------------------------------------------------


@pytest.fixture
def library(server: InProcessServer, monkeypatch: pytest.MonkeyPatch) -> remove_bg_api.RemoveBg:
    """remove-bg-api reads its server from the module constant API_URL."""
    monkeypatch.setattr(remove_bg_api, "API_URL", f"{server.url}/v1.0")
    return remove_bg_api.RemoveBg(KEY)  # calls GET /v1.0/account for the balance


@contextmanager
def files_left_open() -> Iterator[None]:
    """remove_bg_file reads the photo with `open(path).read()` and leaves the closing to the
    garbage collector: its ResourceWarning is the client's, not a failure of the service."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield


def test_pypi_client_from_a_file_keeps_its_balance(
    library: remove_bg_api.RemoveBg, photo_file: Path
) -> None:
    balance = library.account.balance()
    with files_left_open():
        result = library.remove_bg_file(str(photo_file), size="full")
    image = Image.open(io.BytesIO(result))
    assert image.format == "PNG" and image.size == PHOTO_SIZE
    assert library.account.balance() == balance - 1  # it subtracts X-Credits-Charged
    library.account.refresh_balance()
    assert library.account.balance() == balance - 1  # and the server agrees


def test_pypi_client_from_base64_with_geometry(library: remove_bg_api.RemoveBg) -> None:
    encoded = base64.b64encode(images.photo(PHOTO, "JPEG")).decode()
    options = {"size": "full", "format": "png", "scale": "60%", "position": "center"}
    image = Image.open(io.BytesIO(library.remove_bg_base64(encoded, data=options)))
    left, top, right, bottom = opaque_box(image) or (0, 0, 0, 0)
    assert image.size == PHOTO_SIZE
    assert max((right - left) / PHOTO_SIZE[0], (bottom - top) / PHOTO_SIZE[1]) < 0.65


def test_pypi_client_from_a_url_cropped_as_a_mask(
    library: remove_bg_api.RemoveBg, image_host: ImageHost
) -> None:
    options = {"size": "medium", "crop": "true", "channels": "alpha", "format": "png"}
    result = library.remove_bg_url(image_host.url("/cat.jpg"), data=options)
    image = Image.open(io.BytesIO(result))
    assert image.mode == "L" and image.width < PHOTO_SIZE[0]


def test_pypi_client_with_a_background_colour(
    library: remove_bg_api.RemoveBg, photo_file: Path
) -> None:
    options = {"size": "full", "bg_color": "green", "format": "jpg"}
    image = Image.open(io.BytesIO(library.remove_bg_bytes(photo_file.read_bytes(), data=options)))
    assert image.format == "JPEG" and image.size == PHOTO_SIZE


def test_pypi_client_raises_its_errors(library: remove_bg_api.RemoveBg, photo_file: Path) -> None:
    with files_left_open(), pytest.raises(remove_bg_api.Errors.ApiErrorCode400):
        library.remove_bg_file(str(photo_file), data={"size": "full", "scale": "5%"})
    library.change_api_key("not-a-key")
    with files_left_open(), pytest.raises(remove_bg_api.Errors.ApiErrorCode403):
        library.remove_bg_file(str(photo_file), size="full")
