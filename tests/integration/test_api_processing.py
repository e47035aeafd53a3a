"""The processing endpoints through the whole HTTP API in process and the real u2netp model."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from tests import images
from tests.answers import assert_cutout, assert_error
from tests.integration.api_server import InProcessServer
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def post_file(
    client: httpx.Client, path: str, data: bytes, name: str = "photo.png", **options: str
) -> httpx.Response:
    return client.post(path, files={"file": (name, data)}, data=options)


class TestRemoveBackground:
    def test_default_is_png_cutout_with_headers(self, client: httpx.Client) -> None:
        photo = images.photo("astronaut", "PNG")
        response = post_file(client, "/remove-background", photo, name="astronaut.png")
        assert response.status_code == 200, response.text
        result = open_image(response.content)
        assert (result.format, result.mode, result.size) == ("PNG", "RGBA", (512, 512))
        alpha = np.asarray(result.getchannel("A"))
        assert alpha.min() < 10 and alpha.max() > 245  # a real cut-out: both clear and solid
        headers = response.headers
        assert headers["content-type"] == "image/png"
        assert headers["content-disposition"] == 'attachment; filename="astronaut_no_bg.png"'
        assert headers["x-original-size"] == str(len(photo))
        assert headers["x-optimized-size"] == str(len(response.content))
        assert headers["x-optimization-used"] == "false"
        assert (headers["x-image-width"], headers["x-image-height"]) == ("512", "512")
        assert int(headers["x-processing-time-ms"]) > 0

    @pytest.mark.parametrize(
        ("fmt", "pillow_format", "extension", "mimetype"),
        [
            ("png", "PNG", "png", "image/png"),
            ("JPG", "JPEG", "jpg", "image/jpeg"),
            ("jpeg", "JPEG", "jpg", "image/jpeg"),
            ("webp", "WEBP", "webp", "image/webp"),
            ("Avif", "AVIF", "avif", "image/avif"),
        ],
    )
    def test_every_format(
        self, client: httpx.Client, fmt: str, pillow_format: str, extension: str, mimetype: str
    ) -> None:
        response = post_file(
            client,
            "/remove-background",
            images.photo("coffee", "JPEG"),
            name="coffee.jpg",
            format=fmt,
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == mimetype
        assert response.headers["x-optimization-used"] == "true"
        assert f'filename="coffee_no_bg.{extension}"' in response.headers["content-disposition"]
        assert open_image(response.content).format == pillow_format

    def test_jpeg_is_flattened_on_white(self, client: httpx.Client) -> None:
        response = post_file(
            client, "/remove-background", images.photo("astronaut", "PNG"), format="JPEG"
        )
        result = open_image(response.content)
        assert result.mode == "RGB"
        corner = np.asarray(result)[:5, -5:].reshape(-1, 3)  # background in the top right
        assert corner.min() > 200

    def test_quality_changes_size(self, client: httpx.Client) -> None:
        photo = images.photo("coffee", "JPEG")
        low = post_file(client, "/remove-background", photo, format="WEBP", quality="20")
        high = post_file(client, "/remove-background", photo, format="WEBP", quality="95")
        assert len(low.content) < len(high.content)

    def test_png_below_95_is_palette_with_alpha(self, client: httpx.Client) -> None:
        response = post_file(
            client, "/remove-background", images.photo("astronaut", "PNG"), quality="80"
        )
        result = Image.open(io.BytesIO(response.content))
        assert result.mode == "P" and "transparency" in result.info

    def test_fit_into_box_never_upscales(self, client: httpx.Client) -> None:
        photo = images.photo("coffee", "JPEG")  # 600x400
        fitted = post_file(client, "/remove-background", photo, max_width="300")
        assert open_image(fitted.content).size == (300, 200)
        boxed = post_file(client, "/remove-background", photo, max_width="1000", max_height="100")
        assert open_image(boxed.content).size == (150, 100)
        kept = post_file(client, "/remove-background", photo, max_width="4000")
        assert open_image(kept.content).size == (600, 400)

    def test_preset_and_override(self, client: httpx.Client) -> None:
        photo = images.photo("astronaut", "PNG")
        thumb = post_file(client, "/remove-background", photo, preset="thumbnail")
        assert thumb.headers["content-type"] == "image/webp"
        assert open_image(thumb.content).size == (300, 300)
        override = post_file(client, "/remove-background", photo, preset="thumbnail", format="PNG")
        assert override.headers["content-type"] == "image/png"
        assert open_image(override.content).size == (300, 300)

    def test_opaque_background_colour(self, client: httpx.Client) -> None:
        response = post_file(
            client, "/remove-background", images.photo("astronaut", "PNG"), bg_color="#00ff00"
        )
        result = open_image(response.content).convert("RGBA")
        assert np.asarray(result.getchannel("A")).min() == 255
        corner = np.asarray(result)[:5, -5:, :3].reshape(-1, 3)
        assert (corner[:, 1] > 200).all() and (corner[:, 0] < 60).all()

    def test_translucent_background_colour_keeps_alpha(self, client: httpx.Client) -> None:
        response = post_file(
            client, "/remove-background", images.photo("astronaut", "PNG"), bg_color="#ff000080"
        )
        alpha = np.asarray(open_image(response.content).getchannel("A"))
        assert 100 < alpha[:5, -5:].mean() < 160

    def test_crop_with_margin(self, client: httpx.Client) -> None:
        photo = images.photo("rocket", "JPEG")
        full = open_image(post_file(client, "/remove-background", photo).content)
        tight = open_image(post_file(client, "/remove-background", photo, crop="yes").content)
        padded = open_image(
            post_file(client, "/remove-background", photo, crop="true", crop_margin="10%").content
        )
        assert tight.width < full.width or tight.height < full.height
        assert padded.width >= tight.width and padded.height >= tight.height
        assert padded.size != tight.size

    def test_only_mask_is_greyscale(self, client: httpx.Client) -> None:
        response = post_file(
            client,
            "/remove-background",
            images.photo("chelsea", "PNG"),
            only_mask="1",
            bg_color="red",
        )
        result = open_image(response.content)
        assert result.mode == "L" and result.size == (451, 300)

    def test_unknown_model_is_400(self, client: httpx.Client) -> None:
        response = post_file(
            client, "/remove-background", images.photo("chelsea", "PNG"), model="u2net"
        )
        assert_error(response, 400, "invalid_parameter")

    def test_default_model_by_name(self, client: httpx.Client) -> None:
        photo = images.photo("chelsea", "PNG")
        named = post_file(client, "/remove-background", images.fresh(photo), model="u2netp")
        default = post_file(client, "/remove-background", images.fresh(photo))
        assert named.status_code == default.status_code == 200, (named.text, default.text)
        assert named.content == default.content

    def test_non_ascii_filename(self, client: httpx.Client) -> None:
        response = post_file(
            client, "/remove-background", images.photo("chelsea", "PNG"), name="café chat.png"
        )
        disposition = response.headers["content-disposition"]
        assert "filename*=UTF-8''caf%C3%A9%20chat_no_bg.png" in disposition
        assert 'filename="cafe chat_no_bg.png"' in disposition

    def test_path_in_filename_is_stripped(self, client: httpx.Client) -> None:
        response = post_file(
            client,
            "/remove-background",
            images.photo("chelsea", "PNG"),
            name="..\\..\\windows\\evil:name.png",
        )
        expected = 'attachment; filename="evil_name_no_bg.png"'
        assert response.headers["content-disposition"] == expected


class TestInputs:
    """Inputs generated in code, each decoded or refused as the contract says."""

    @pytest.mark.parametrize(
        ("make", "size"),
        [
            (images.cmyk_jpeg, None),
            (images.grey16_png, None),
            (images.palette_png_with_transparency, None),
            (images.exif_rotated_jpeg, "portrait"),
            (images.animated_gif, None),
        ],
    )
    def test_decodable(self, client: httpx.Client, make, size: str | None) -> None:
        response = post_file(client, "/remove-background", make())
        assert response.status_code == 200, response.text
        result = open_image(response.content)
        assert getattr(result, "n_frames", 1) == 1
        assert result.getexif().get(0x0112) is None
        if size == "portrait":
            assert result.height > result.width

    @pytest.mark.parametrize(
        ("make", "status", "code"),
        [
            (images.truncated_jpeg, 400, "invalid_image"),
            (images.empty_file, 400, "invalid_image"),
            (images.oversized_header_png, 413, "payload_too_large"),
            (images.text_file, 415, "unsupported_media_type"),
            (images.tiff_image, 415, "unsupported_media_type"),
        ],
    )
    def test_refused(self, client: httpx.Client, make, status: int, code: str) -> None:
        assert_error(post_file(client, "/remove-background", make()), status, code)

    def test_missing_file_is_400(self, client: httpx.Client) -> None:
        form_without_file = {"format": (None, "PNG")}  # multipart, one text part
        assert_error(
            client.post("/remove-background", files=form_without_file), 400, "invalid_image"
        )

    @pytest.mark.parametrize(
        "options",
        [
            {"quality": "5"},
            {"quality": "abc"},
            {"format": "GIF"},
            {"max_width": "50"},
            {"max_height": "5000"},
            {"preset": "poster"},
            {"bg_color": "#12"},
            {"crop": "maybe"},
            {"crop_margin": "60%"},
            {"colour": "red"},
        ],
    )
    def test_bad_options_are_400(self, client: httpx.Client, options: dict[str, str]) -> None:
        response = post_file(
            client, "/remove-background", images.photo("chelsea", "PNG"), **options
        )
        assert_error(response, 400, "invalid_parameter")

    def test_body_over_limit_is_413_before_reading(self, server: InProcessServer) -> None:
        """Only headers are sent: the 413 must come without waiting for the 64 MiB body."""
        head = (
            "POST /remove-background HTTP/1.1\r\nHost: localhost\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {64 * 1024 * 1024}\r\nConnection: close\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head.encode())
            reply = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
        status_line, _, rest = reply.partition("\r\n")
        assert " 413 " in status_line
        assert '"code":"payload_too_large"' in rest

    def test_streamed_body_over_limit_is_413(self, client: httpx.Client) -> None:
        """Without Content-Length (chunked), the body is counted as it arrives."""

        def chunks():
            yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
            for _ in range(20):
                yield b"\0" * (1024 * 1024)

        response = client.post(
            "/remove-background",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        assert_error(response, 413, "payload_too_large")

    def test_service_keeps_serving_after_errors(self, client: httpx.Client) -> None:
        for make in (images.truncated_jpeg, images.text_file, images.oversized_header_png):
            refused = post_file(client, "/remove-background", make())
            assert 400 <= refused.status_code < 500 and refused.json()["code"], refused.text
        response = post_file(client, "/remove-background", images.photo("chelsea", "PNG"))
        assert response.status_code == 200, response.text
        assert_cutout(response.content, images.photo_image("chelsea").size)


class TestJsonEndpoints:
    def test_preview_result_shape(self, client: httpx.Client) -> None:
        photo = images.photo("coffee", "JPEG")
        response = post_file(
            client,
            "/remove-background-preview",
            photo,
            format="webp",
            quality="70",
            max_width="300",
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["success"] is True
        decoded = base64.b64decode(body["image"])
        assert body["size"] == len(decoded) and body["mimetype"] == "image/webp"
        assert body["original_size"] == len(photo)
        assert (body["width"], body["height"]) == open_image(decoded).size == (300, 200)
        expected_ratio = f"{round((1 - len(decoded) / len(photo)) * 100)}%"
        assert body["optimization"] == {
            "format": "WEBP",
            "quality": 70,
            "dimensions": "300x200",
            "compression_ratio": expected_ratio,
            "preset": None,
        }
        assert response.headers["x-optimized-size"] == str(len(decoded))

    @pytest.mark.parametrize("data_url", [False, True])
    def test_base64(self, client: httpx.Client, data_url: bool) -> None:
        photo = images.photo("chelsea", "PNG")
        encoded = base64.b64encode(photo).decode()
        if data_url:
            encoded = "data:image/png;base64," + encoded
        response = client.post(
            "/remove-background-base64", json={"image": encoded, "preset": "thumbnail"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["optimization"]["preset"] == "thumbnail"
        assert body["original_size"] == len(photo)
        assert open_image(base64.b64decode(body["image"])).format == "WEBP"

    @pytest.mark.parametrize(
        ("payload", "code"),
        [
            ({"image": "***not base64***"}, "invalid_image"),
            ({}, "invalid_image"),
            ({"image": base64.b64encode(b"hello").decode()}, "unsupported_media_type"),
            ({"image": "aGVsbG8=", "quality": 500}, "invalid_parameter"),
        ],
    )
    def test_base64_errors(self, client: httpx.Client, payload: dict, code: str) -> None:
        response = client.post("/remove-background-base64", json=payload)
        assert response.json()["code"] == code

    def test_malformed_json_is_400(self, client: httpx.Client) -> None:
        response = client.post(
            "/remove-background-base64",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert_error(response, 400, "invalid_parameter")


class TestBatch:
    def test_zip_with_manifest_and_partial_failure(self, client: httpx.Client) -> None:
        files = [
            ("files", ("a.png", images.photo("chelsea", "PNG"))),
            ("files", ("b.jpg", images.photo("coffee", "JPEG"))),
            ("files", ("broken.jpg", images.truncated_jpeg())),
            ("files", ("a.png", images.photo("rocket", "PNG"))),
        ]
        response = client.post("/remove-background-batch", files=files, data={"format": "webp"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        manifest = json.loads(archive.read("manifest.json"))["files"]
        assert [row["status"] for row in manifest] == ["ok", "ok", "error", "ok"]
        assert manifest[2]["error"]["code"] == "invalid_image"
        assert manifest[2]["output"] is None
        outputs = [row["output"] for row in manifest if row["status"] == "ok"]
        assert len(set(outputs)) == 3 and all(name.endswith(".webp") for name in outputs)
        for row in manifest:
            assert {
                "name",
                "output",
                "status",
                "original_size",
                "size",
                "mimetype",
                "error",
            } <= row.keys()
            if row["status"] == "ok":
                data = archive.read(row["output"])
                assert len(data) == row["size"] and open_image(data).format == "WEBP"

    def test_too_many_files(self, client: httpx.Client) -> None:
        tiny = images.photo("chelsea", "JPEG")
        files = [("files", (f"{i}.jpg", tiny)) for i in range(21)]
        assert_error(client.post("/remove-background-batch", files=files), 400, "invalid_parameter")


class TestParityWithRembg:
    """The alpha we return equals rembg's own mask within ±2 on ≥ 99.5% of pixels."""

    @pytest.fixture(scope="class")
    @classmethod
    def rembg_session(cls):
        rembg = pytest.importorskip("rembg")
        return rembg.new_session("u2netp")

    @pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "rocket"])
    def test_alpha_matches_rembg(self, client: httpx.Client, rembg_session, name: str) -> None:
        from rembg import remove

        photo = images.photo(name, "PNG")
        response = post_file(client, "/remove-background", photo)
        ours = np.asarray(open_image(response.content).getchannel("A"), dtype=int)
        reference = remove(Image.open(io.BytesIO(photo)), session=rembg_session, only_mask=True)
        theirs = np.asarray(reference, dtype=int)
        assert ours.shape == theirs.shape
        assert (np.abs(ours - theirs) <= 2).mean() >= 0.995


def test_heavy_work_does_not_block_the_event_loop(
    client: httpx.Client, server: InProcessServer
) -> None:
    """While 12 MP photos are decoded, inferred and encoded, light routes still answer fast."""
    big = images.large_jpeg()
    errors: list[int] = []

    def heavy() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as own:
            response = post_file(own, "/remove-background", images.fresh(big), format="PNG")
            if response.status_code != 200:
                errors.append(response.status_code)

    workers = [threading.Thread(target=heavy) for _ in range(2)]
    for worker in workers:
        worker.start()
    wait_until(lambda: server.admitted_bytes() > 0, 60, "a 12 MP photo admitted to processing")
    latencies = []
    while any(worker.is_alive() for worker in workers):
        started = time.perf_counter()
        assert client.get("/presets").status_code == 200
        latencies.append(time.perf_counter() - started)
        time.sleep(0.05)
    for worker in workers:
        worker.join()
    assert not errors
    assert len(latencies) >= 5
    assert max(latencies) < 0.5, f"slowest /presets during heavy work: {max(latencies):.2f}s"
