"""Every answer of `/v1.0/*` these tests provoke, checked against remove.bg's own OpenAPI 1.0.0
document (installed from the npm registry by tests/clients/npm.py): each parameter of
`/v1.0/removebg`, each error it can give, the key refusals, the rate limit, `/v1.0/account`
and `/v1.0/improve`. Each case also states the status and code it expects, so a conforming
but wrong answer fails too."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests import images
from tests.clients.npm import removebg_openapi
from tests.integration.api_server import InProcessServer
from tests.integration.image_host import ImageHost, server_fetching_from, serving_images
from tests.integration.removebg_spec import conforms

pytestmark = pytest.mark.slow
KEY = "conformance-key"
MAX_BODY = 3_000_000
PHOTO = images.photo("chelsea", "JPEG")
BACKDROP = images.photo("coffee", "JPEG")
FLAT = images.encode(Image.new("RGB", (400, 300), "white"), "PNG")
Call = Callable[[httpx.Client, ImageHost], httpx.Response]


@pytest.fixture(scope="module")
def image_host() -> Iterator[ImageHost]:
    with serving_images() as host:
        host.add("/cat.jpg", PHOTO)
        host.add("/backdrop.jpg", BACKDROP)
        host.add("/words.txt", b"plain text, not an image", "text/plain")
        yield host


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, image_host: ImageHost
) -> Iterator[InProcessServer]:
    env = {"API_KEYS": KEY, "MAX_CONTENT_LENGTH": str(MAX_BODY)}
    with server_fetching_from(image_host, tmp_path_factory.mktemp("conformance"), env) as running:
        yield running


@pytest.fixture
def client(server: InProcessServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120, headers={"X-Api-Key": KEY}) as http:
        yield http


def upload(**fields: Any) -> Call:
    """A multipart request with the photo as image_file and these form fields."""
    files = {name: value for name, value in fields.items() if isinstance(value, tuple)}
    data = {name: value for name, value in fields.items() if not isinstance(value, tuple)}
    files.setdefault("image_file", ("cat.jpg", PHOTO))
    return lambda client, host: client.post("/v1.0/removebg", files=files, data=data)


def as_json(accept_json: bool = False, **fields: Any) -> Call:
    """A JSON request; a value "{host}/path" becomes that path's URL on the image host."""

    def call(client: httpx.Client, host: ImageHost) -> httpx.Response:
        body = {
            name: host.url(value.removeprefix("{host}"))
            if str(value).startswith("{host}")
            else value
            for name, value in fields.items()
        }
        headers = {"Accept": "application/json"} if accept_json else {}
        return client.post("/v1.0/removebg", json=body, headers=headers)

    return call


B64 = base64.b64encode(PHOTO).decode()
ACCEPTED: dict[str, Call] = {
    **{
        f"size={size}": upload(size=size)
        for size in ("preview", "small", "regular", "medium", "hd", "full", "4k", "auto", "50MP")
    },
    **{
        f"type={kind}": upload(type=kind)
        for kind in ("auto", "person", "product", "car", "animal", "graphic", "transportation")
    },
    **{f"type_level={level}": upload(type_level=level) for level in ("none", "1", "2", "latest")},
    **{f"format={fmt}": upload(format=fmt) for fmt in ("auto", "png", "jpg", "webp")},
    "format=zip as JSON": as_json(True, image_file_b64=B64, format="zip"),
    "roi": upload(roi="10% 5% 90% 95%"),
    "roi in pixels": upload(roi="20px 10px 400px 290px"),
    "crop": upload(crop="true"),
    "crop_margin, one value": upload(crop="true", crop_margin="10px"),
    "crop_margin, two values": upload(crop="true", crop_margin="10px 5%"),
    "crop_margin, four values": upload(crop="true", crop_margin="1px 2px 3px 4px"),
    "scale": upload(scale="50%"),
    "position": upload(scale="50%", position="20% 80%"),
    "channels=rgba": upload(channels="rgba"),
    "channels=alpha": upload(channels="alpha"),
    "bg_color": upload(bg_color="81d4fa"),
    "bg_color with alpha": upload(bg_color="81d4fa80"),
    "bg_color by name": upload(bg_color="green"),
    "bg_image_file": upload(bg_image_file=("backdrop.jpg", BACKDROP)),
    "bg_image_url": as_json(image_file_b64=B64, bg_image_url="{host}/backdrop.jpg"),
    "add_shadow": upload(add_shadow="true"),
    "shadow_type and opacity": upload(shadow_type="drop", shadow_opacity="70"),
    "shadow_method": upload(add_shadow="true", shadow_method="legacy"),
    "semitransparency": upload(semitransparency="false"),
    "image_file_b64, JSON answer": as_json(True, image_file_b64=B64),
    "image_url": as_json(image_url="{host}/cat.jpg"),
    "form-encoded base64": lambda client, host: client.post(
        "/v1.0/removebg", data={"image_file_b64": B64, "size": "medium"}
    ),
}


@pytest.mark.parametrize("call", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_parameters_conform(
    client: httpx.Client, image_host: ImageHost, call: Call
) -> None:
    response = call(client, image_host)
    assert response.status_code == 200, response.text
    conforms(removebg_openapi(), "POST", response)


def huge_png() -> bytes:
    """60 megapixels of one colour: a small file, a resolution over every limit."""
    return images.encode(Image.new("L", (8000, 7500), 200), "PNG")


REFUSED: dict[str, tuple[Call, str]] = {
    "no image": (as_json(size="full"), "missing_source"),
    "two images": (upload(image_file_b64=B64), "multiple_sources"),
    "a text file": (upload(image_file=("words.txt", b"not an image at all")), "invalid_file_type"),
    "a body over the limit": (
        upload(image_file=("big.jpg", b"\xff\xd8" + bytes(MAX_BODY + 1000))),
        "file_too_large",
    ),
    "60 megapixels": (upload(image_file=("huge.png", huge_png())), "resolution_too_high"),
    "a truncated JPEG": (
        upload(image_file=("cut.jpg", images.truncated_jpeg())),
        "failed_to_read_image",
    ),
    "bad base64": (as_json(image_file_b64="%%% not base64 %%%"), "failed_to_read_image"),
    "size": (upload(size="gigantic"), "invalid_size"),
    "format": (upload(format="gif"), "invalid_format"),
    "channels": (upload(channels="rgb"), "invalid_channels"),
    "bg_color": (upload(bg_color="not-a-colour"), "invalid_bg_color"),
    "scale": (upload(scale="5%"), "invalid_scale"),
    "position": (upload(position="left"), "invalid_position"),
    "roi": (upload(roi="0 0 100"), "invalid_roi"),
    "roi outside the image": (upload(roi="0px 0px 5000px 5000px"), "roi_exceeds_bounds"),
    "empty roi": (upload(roi="50% 50% 50% 90%"), "roi_region_empty"),
    "crop_margin": (upload(crop="true", crop_margin="1px 2px 3px"), "invalid_crop_margin"),
    "bg_color and bg_image_file": (
        upload(bg_color="red", bg_image_file=("b.jpg", BACKDROP)),
        "multiple_bg_sources",
    ),
    "bg_image_url": (
        as_json(image_file_b64=B64, bg_image_url="ftp://x/y.jpg"),
        "invalid_bg_image_url",
    ),
    "bg_image_url not found": (
        as_json(image_file_b64=B64, bg_image_url="{host}/missing.jpg"),
        "failed_bg_download",
    ),
    "image_url": (as_json(image_url="not a url"), "invalid_image_url"),
    "image_url not found": (as_json(image_url="{host}/missing.jpg"), "failed_image_download"),
    "type": (upload(type="spaceship"), "invalid_type"),
    "type_level": (upload(type_level="3"), "invalid_type_level"),
    "shadow_type": (upload(shadow_type="neon"), "invalid_shadow_type"),
    "shadow_opacity": (upload(add_shadow="true", shadow_opacity="150"), "invalid_shadow_opacity"),
    "semitransparency": (upload(semitransparency="perhaps"), "invalid_semitransparency"),
    "no subject": (upload(image_file=("wall.png", FLAT)), "unknown_foreground"),
}


@pytest.mark.parametrize(("call", "code"), REFUSED.values(), ids=REFUSED.keys())
def test_errors_conform(client: httpx.Client, image_host: ImageHost, call: Call, code: str) -> None:
    response = call(client, image_host)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == code
    conforms(removebg_openapi(), "POST", response)


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Api-Key": "wrong"}, {"Authorization": "Bearer wrong"}],
    ids=["no key", "wrong key", "wrong bearer token"],
)
@pytest.mark.parametrize(
    "method", ["POST /v1.0/removebg", "GET /v1.0/account", "POST /v1.0/improve"]
)
def test_key_refusals_conform(
    server: InProcessServer, headers: dict[str, str], method: str
) -> None:
    verb, path = method.split()
    response = httpx.request(
        verb,
        f"{server.url}{path}",
        headers=headers,
        files={"image_file": ("c.jpg", PHOTO)} if verb == "POST" else None,
        timeout=60,
    )
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["code"] == "auth_failed"
    conforms(removebg_openapi(), verb, response)


def test_bearer_token_is_a_key(server: InProcessServer) -> None:
    response = httpx.get(
        f"{server.url}/v1.0/account", headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    )
    assert response.status_code == 200, response.text
    conforms(removebg_openapi(), "GET", response)


def test_account_and_improve_conform(client: httpx.Client) -> None:
    account = client.get("/v1.0/account")
    assert account.status_code == 200
    conforms(removebg_openapi(), "GET", account)
    improve = client.post(
        "/v1.0/improve", files={"image_file": ("c.jpg", PHOTO)}, data={"tag": "hair"}
    )
    assert improve.status_code == 200, improve.text
    conforms(removebg_openapi(), "POST", improve)
    refused = client.post("/v1.0/improve", data={"tag": "hair"})
    assert refused.status_code == 400
    conforms(removebg_openapi(), "POST", refused)


def test_the_rate_limit_conforms(tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"RATE_LIMIT_REMOVE_BG_PER_HOUR": "1"}
    with InProcessServer(tmp_path_factory.mktemp("limited"), env=env) as limited:
        files, full = {"image_file": ("c.jpg", PHOTO)}, {"size": "full"}  # one credit each
        first = httpx.post(f"{limited.url}/v1.0/removebg", files=files, data=full, timeout=60)
        conforms(removebg_openapi(), "POST", first)
        second = httpx.post(f"{limited.url}/v1.0/removebg", files=files, data=full, timeout=60)
        assert second.status_code == 429
        assert second.json()["errors"][0]["code"] == "rate_limit_exceeded"
        assert int(second.headers["retry-after"]) > 0
        conforms(removebg_openapi(), "POST", second)
        account = httpx.get(f"{limited.url}/v1.0/account", timeout=60)
        conforms(removebg_openapi(), "GET", account)
