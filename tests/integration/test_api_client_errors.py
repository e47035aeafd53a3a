"""Client input that used to end in a 500, a wrong 304, or a silently misread form, through
the whole HTTP API in process: each gets the contract's 4xx with a code (or a 200 where the
input is valid), a batch reports a bad file in its manifest, and a real 500 closes its
connection saying so."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests import hostile, images
from tests.answers import assert_error, assert_ok
from tests.integration.api_server import InProcessServer
from tests.serving import Connect, free_port

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")
PHOTO_B64 = base64.b64encode(PHOTO).decode()
SECRET = b"outside the upload folder"


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    env = {"ALLOW_IMAGE_URL": "true"}
    with InProcessServer(tmp_path_factory.mktemp("edges"), env=env) as server:
        uploads = Path(server.env["UPLOAD_DIR"])
        (uploads / "loop-a").symlink_to("loop-b")
        (uploads / "loop-b").symlink_to("loop-a")
        os.symlink(b"caf\xe9.jpg", bytes(uploads / "latin1.jpg"))
        Path(os.fsdecode(bytes(uploads) + b"/caf\xe9.jpg")).write_bytes(PHOTO)
        yield server


def wide(size: tuple[int, int]) -> bytes:
    return images.encode(Image.new("L", size, 200), "PNG")


def raw_json(client: httpx.Client, path: str, body: dict) -> httpx.Response:
    """JSON as Python writes it: lone surrogates as `\\udXXX` escapes (httpx would refuse)."""
    content = json.dumps(body).encode()
    return client.post(path, content=content, headers={"Content-Type": "application/json"})


def form(client: httpx.Client, path: str, parts: list[bytes], charset: str = "") -> httpx.Response:
    """A hand-written multipart body (names and file names as raw bytes)."""
    body = b"".join(b"--b\r\n" + part + b"\r\n" for part in parts) + b"--b--\r\n"
    content_type = "multipart/form-data; boundary=b" + (f"; charset={charset}" if charset else "")
    return client.post(path, content=body, headers={"Content-Type": content_type})


def file_part(name: bytes, filename: bytes, data: bytes) -> bytes:
    disposition = b'Content-Disposition: form-data; name="%s"; filename="%s"' % (name, filename)
    return disposition + b"\r\n\r\n" + data


def text_part(name: bytes, value: bytes) -> bytes:
    return b'Content-Disposition: form-data; name="%s"\r\n\r\n' % name + value


def upload(client: httpx.Client, data: bytes, path: str = "/remove-background", **options: str):  # type: ignore[no-untyped-def]
    field = "image_file" if path == "/v1.0/removebg" else "file"
    return client.post(path, files={field: ("image.png", data)}, data=options)


CASES = {
    # lone surrogates in anything echoed back
    "json option value": lambda c: raw_json(
        c, "/remove-background-base64", {"image": PHOTO_B64, "format": "\ud800"}
    ),
    "json option name": lambda c: raw_json(
        c, "/remove-background-base64", {"image": PHOTO_B64, "\ud800": "x"}
    ),
    "json bg_color": lambda c: raw_json(
        c, "/remove-background-base64", {"image": PHOTO_B64, "bg_color": "\udfff"}
    ),
    "json preset": lambda c: raw_json(
        c, "/remove-background-base64", {"image": PHOTO_B64, "preset": "\ud800"}
    ),
    "json image": lambda c: raw_json(c, "/remove-background-base64", {"image": "\ud800"}),
    "read-file path": lambda c: raw_json(c, "/read-file", {"path": "\ud800.jpg"}),
    "removebg json parameter value": lambda c: raw_json(
        c, "/v1.0/removebg", {"image_file_b64": PHOTO_B64, "size": "\ud800"}
    ),
    "unicode_escape field name": lambda c: form(
        c,
        "/remove-background",
        [file_part(b"file", b"a.jpg", PHOTO), text_part(b"\\ud800", b"x")],
        charset="unicode_escape",
    ),
    # colours whose channels overflow
    "bg_color rgba overflow": lambda c: upload(c, PHOTO, bg_color="rgba(0,0,0,99999999999)"),
    "bg_color hsl overflow": lambda c: upload(c, PHOTO, bg_color="hsl(0,100%,99999999999%)"),
    # outputs an encoder cannot hold
    "17000 wide to WEBP": lambda c: upload(c, wide((17000, 800)), format="WEBP"),
    "70000 tall to JPEG": lambda c: upload(c, wide((1, 70000)), format="JPEG"),
    "70000 tall to remove.bg zip": lambda c: upload(
        c, wide((1, 70000)), "/v1.0/removebg", format="zip", size="full"
    ),
    # /read-file names the file system refuses
    "read-file long name": lambda c: c.post("/read-file", json={"path": "a" * 300 + ".jpg"}),
    "read-file symlink loop": lambda c: c.post("/read-file", json={"path": "loop-a"}),
    # image_url that does not parse
    "image_url unclosed bracket": lambda c: c.post(
        "/v1.0/removebg", json={"image_url": "http://[::1"}
    ),
    "image_url bracketed IPv4": lambda c: c.post(
        "/v1.0/removebg", json={"image_url": "http://[1.2.3.4]/a.png"}
    ),
    "image_url empty label": lambda c: c.post(
        "/v1.0/removebg", json={"image_url": "http://a..b/a.png"}
    ),
    "image_url control byte": lambda c: c.post(
        "/v1.0/removebg", json={"image_url": "http://a\x01b/a.png"}
    ),
    "image_url port 0": lambda c: c.post(
        "/v1.0/removebg", json={"image_url": "http://example.com:0/a.png"}
    ),
}
STATUS = {
    "json image": (400, "invalid_image"),
    # remove.bg's API names the parameter that failed
    "removebg json parameter value": (400, "invalid_size"),
    "70000 tall to remove.bg zip": (400, "invalid_format"),
    **{
        f"image_url {case}": (400, "invalid_image_url")
        for case in ("unclosed bracket", "bracketed IPv4", "empty label", "control byte", "port 0")
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_4xx_with_a_code(
    edges: InProcessServer, connect: Connect, case: str
) -> None:
    response = CASES[case](connect(edges))
    status, code = STATUS.get(case, (400, "invalid_parameter"))
    assert response.status_code == status, response.text
    body = response.json()
    codes = [error["code"] for error in body["errors"]] if "errors" in body else [body["code"]]
    assert codes == [code], body


VALID = {
    "unicode_escape file name": lambda c: form(
        c, "/remove-background", [file_part(b"file", b"\\ud800.jpg", PHOTO)], "unicode_escape"
    ),
    "file name not UTF-8": lambda c: form(
        c, "/remove-background", [file_part(b"file", b"\xff\xfe cat.jpg", PHOTO)]
    ),
    "dpi and unreadable Exif": lambda c: upload(c, hostile.jpeg_with_unreadable_exif()),
    "dpi and unreadable Exif, boxed": lambda c: upload(
        c, hostile.jpeg_with_unreadable_exif(), max_width="200"
    ),
    "dpi and unreadable Exif, remove.bg": lambda c: upload(
        c, hostile.jpeg_with_unreadable_exif(), "/v1.0/removebg"
    ),
    "read-file name not UTF-8": lambda c: c.post("/read-file", json={"path": "latin1.jpg"}),
    "file sent as a text part": lambda c: form(
        c, "/remove-background", [text_part(b"file", PHOTO)]
    ),
}


@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_input_with_unusual_bytes_is_served(
    edges: InProcessServer, connect: Connect, case: str
) -> None:
    response = VALID[case](connect(edges))
    assert_ok(response)
    assert response.headers.get("content-disposition", "").isascii()


def test_a_file_sent_as_a_text_part_keeps_its_bytes(
    edges: InProcessServer, connect: Connect
) -> None:
    """`curl -F 'file=<photo.jpg'` sends the file as a text part; it is decoded as the photo,
    not as text re-encoded."""
    client = connect(edges)
    as_text = form(client, "/remove-background", [text_part(b"file", PHOTO)])
    as_file = form(client, "/remove-background", [file_part(b"file", b"image.jpg", PHOTO)])
    assert_ok(as_text)
    assert as_text.content == as_file.content


def test_one_bad_file_in_a_batch_is_reported_in_its_manifest(
    edges: InProcessServer, connect: Connect
) -> None:
    files = [
        ("files", ("good.jpg", PHOTO)),
        ("files", ("too-wide.png", wide((17000, 800)))),
        ("files", ("bomb.jpg", hostile.scan_bomb_jpeg())),
    ]
    response = connect(edges).post("/remove-background-batch", files=files, data={"format": "WEBP"})
    assert_ok(response)
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(response.content)).read("manifest.json"))
    rows = {row["name"]: row for row in manifest["files"]}
    assert rows["good.jpg"]["status"] == "ok"
    assert rows["too-wide.png"]["error"]["code"] == "invalid_parameter"
    assert rows["bomb.jpg"]["error"]["code"] == "invalid_image"


def test_pillows_bomb_warning_stays_a_413_after_batches(
    edges: InProcessServer, connect: Connect
) -> None:
    """Batches decoded in parallel once leaked a warnings filter that made Pillow's bomb
    warning an exception: a 9500x9500 header was then a 500 for the life of the process."""
    client = connect(edges)
    for _ in range(3):
        files = [("files", (f"{n}.png", images.photo_png("chelsea"))) for n in range(4)]
        assert_ok(client.post("/remove-background-batch", files=files))
    assert_error(upload(client, images.oversized_header_png(9500, 9500)), 413, "payload_too_large")


# --- forms: what is not a form, or not one value ------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"just text", "text/plain"),
        (b'{"file": "x"}', "application/json"),
        (b"", None),
        (b"file=abc", "application/x-www-form-urlencoded"),
        (b"--b\r\n", "multipart/form-data"),  # no boundary
    ],
)
def test_a_body_that_is_not_multipart_is_refused_before_the_budget(
    edges: InProcessServer, connect: Connect, content: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = connect(edges).post("/remove-background", content=content, headers=headers)
    assert_error(response, 400, "invalid_parameter")
    assert "x-ratelimit-remaining" not in response.headers


@pytest.mark.parametrize(
    "parts",
    [
        [
            file_part(b"file", b"a.jpg", PHOTO),
            text_part(b"format", b"PNG"),
            text_part(b"format", b"JPEG"),
        ],
        [file_part(b"file", b"a.jpg", PHOTO), file_part(b"file", b"b.jpg", PHOTO)],
        [file_part(b"file", b"a.jpg", PHOTO), file_part(b"format", b"f.txt", b"PNG")],
    ],
    ids=["option twice", "two files", "option as a file"],
)
def test_fields_that_are_not_one_value_are_400(
    edges: InProcessServer, connect: Connect, parts: list[bytes]
) -> None:
    response = form(connect(edges), "/remove-background", parts)
    assert_error(response, 400, "invalid_parameter")


def test_removebg_base64_form_field_is_not_capped_at_one_mib(
    edges: InProcessServer, connect: Connect
) -> None:
    encoded = base64.b64encode(images.large_jpeg())
    assert len(encoded) > 1024 * 1024
    as_multipart = {"files": {"image_file_b64": (None, encoded)}}
    as_urlencoded = {"data": {"image_file_b64": encoded.decode()}}
    for body in (as_multipart, as_urlencoded):
        response = connect(edges).post("/v1.0/removebg", **body)  # type: ignore[arg-type]
        assert_ok(response)
        assert int(response.headers["x-width"]) > 0


# --- wrong 304s ----------------------------------------------------------------------------


def test_removebg_zip_is_never_answered_with_the_pngs_etag(
    edges: InProcessServer, connect: Connect
) -> None:
    client, photo = connect(edges), images.fresh(PHOTO)
    png = upload(client, photo, "/v1.0/removebg", format="png")
    for tag in (png.headers["etag"], "*"):
        zipped = client.post(
            "/v1.0/removebg",
            files={"image_file": ("a.jpg", photo)},
            data={"format": "zip"},
            headers={"If-None-Match": tag},
        )
        assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"


def test_if_none_match_star_needs_a_result_that_exists(
    edges: InProcessServer, connect: Connect
) -> None:
    client = connect(edges)
    text = client.post(
        "/remove-background",
        files={"file": ("notes.txt", images.text_file())},
        headers={"If-None-Match": "*"},
    )
    assert_error(text, 415, "unsupported_media_type")
    photo = images.fresh(PHOTO)
    first = client.post(
        "/remove-background", files={"file": ("a.jpg", photo)}, headers={"If-None-Match": "*"}
    )
    assert_ok(first)  # nothing made yet: a 304 would name nothing
    again = client.post(
        "/remove-background", files={"file": ("a.jpg", photo)}, headers={"If-None-Match": "*"}
    )
    assert again.status_code == 304


def test_removebg_with_two_sources_is_400_even_when_revalidating(
    edges: InProcessServer, connect: Connect
) -> None:
    client, photo = connect(edges), images.fresh(PHOTO)
    assert_ok(upload(client, photo, "/v1.0/removebg"))  # its result is cached now
    both = client.post(
        "/v1.0/removebg",
        files={"image_file": ("a.jpg", photo)},
        data={"image_file_b64": base64.b64encode(photo).decode()},
        headers={"If-None-Match": "*"},
    )
    assert both.status_code == 400, both.text
    assert both.json()["errors"][0]["code"] == "multiple_sources"


# --- the remove.bg account with Redis down and limits failing closed ----------------------


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        "RATE_LIMIT_FAIL_OPEN": "false",
        "REDIS_SOCKET_TIMEOUT": "0.2",
    }
    with InProcessServer(tmp_path_factory.mktemp("closed"), env=env) as server:
        yield server


def test_account_is_503_when_redis_is_down_and_limits_fail_closed(
    closed: InProcessServer, connect: Connect
) -> None:
    response = connect(closed).get("/v1.0/account")
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["code"] == "unavailable"


# --- a real 500 closes its connection, and says so ----------------------------------------


class BrokenModels:
    async def segment(self, batch, model):  # type: ignore[no-untyped-def]
        raise RuntimeError("the model crashed")

    async def available(self) -> dict[str, int]:
        return {"u2netp": 320}

    async def ping(self) -> str:
        return "u2netp"


def test_after_a_500_the_connection_is_closed_with_connection_close(tmp_path: Path) -> None:
    with InProcessServer(tmp_path) as server:
        server.application.processor.models = BrokenModels()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            failed = client.post("/remove-background", files={"file": ("a.jpg", PHOTO)})
            assert_error(failed, 500, "internal_error")
            assert failed.headers["connection"] == "close"
            assert_ok(client.get("/presets"))  # the client opened a new connection


# --- /read-file under a file swapped for a symlink ------------------------------------------


def test_read_file_never_serves_a_file_outside_while_it_is_swapped(
    edges: InProcessServer, connect: Connect, tmp_path: Path
) -> None:
    uploads = Path(edges.env["UPLOAD_DIR"])
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(SECRET)
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            (uploads / "race.tmp").symlink_to(secret)
            os.replace(uploads / "race.tmp", uploads / "race.jpg")
            (uploads / "race.tmp").write_bytes(PHOTO)
            os.replace(uploads / "race.tmp", uploads / "race.jpg")

    (uploads / "race.jpg").write_bytes(PHOTO)
    swapper = threading.Thread(target=swap)
    swapper.start()
    client, statuses = connect(edges), set()
    try:
        for _ in range(300):
            response = client.post("/read-file", json={"path": "race.jpg"})
            statuses.add(response.status_code)
            if response.status_code == 200:
                assert base64.b64decode(response.json()["image"]) == PHOTO
    finally:
        stop.set()
        swapper.join()
    assert statuses <= {200, 403, 404} and 200 in statuses, statuses
