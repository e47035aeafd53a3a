"""remove.bg's parameters mapped to ours (application/removebg_params.py), and its answers
(application/removebg.py)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from application import removebg, removebg_params
from contract.errors import InvalidParameter, RateLimited
from optimizer import Options, OutputFormat, PreparedImage


def parse(**fields: str) -> Options:
    return removebg_params.parse_removebg(fields)


@pytest.mark.parametrize(
    ("size", "pixels"),
    [
        (None, 250_000),
        ("preview", 250_000),
        ("small", 250_000),
        ("regular", 250_000),
        ("medium", 1_500_000),
        ("hd", 4_000_000),
        ("full", 25_000_000),
        ("4k", 25_000_000),
        ("auto", 25_000_000),
        ("50MP", 50_000_000),
    ],
)
def test_sizes(size: str | None, pixels: int) -> None:
    fields = {"size": size} if size else {}
    assert removebg_params.parse_removebg(fields).max_output_pixels == pixels


def test_auto_format_is_png_with_transparency_and_jpeg_when_opaque() -> None:
    assert parse().format is OutputFormat.PNG
    assert parse(bg_color="81d4fa").format is OutputFormat.JPEG
    assert parse(bg_color="#81d4fa80").format is OutputFormat.PNG
    assert parse(channels="alpha").format is OutputFormat.JPEG
    assert parse(format="png", bg_color="red").format is OutputFormat.PNG


@pytest.mark.parametrize(
    ("fmt", "expected"), [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP"), ("zip", "PNG")]
)
def test_formats(fmt: str, expected: str) -> None:
    assert parse(format=fmt).format.value == expected
    assert removebg_params.wants_archive({"format": fmt}) is (fmt == "zip")


def test_colours_with_and_without_hash_and_names() -> None:
    assert parse(bg_color="81d4fa").bg_color == (0x81, 0xD4, 0xFA, 255)
    assert parse(bg_color="fff").bg_color == (255, 255, 255, 255)
    assert parse(bg_color="green").bg_color == (0, 128, 0, 255)


@pytest.mark.parametrize(
    ("margin", "pixels", "percent"), [("30px", 30, False), ("30", 30, False), ("10%", 10, True)]
)
def test_crop_margin(margin: str, pixels: int, percent: bool) -> None:
    options = parse(crop="true", crop_margin=margin)
    side = options.crop_margin.uniform
    assert options.crop and side is not None and (side.value, side.percent) == (pixels, percent)


def test_channels_alpha_is_the_mask() -> None:
    assert parse(channels="alpha").only_mask
    assert not parse(channels="rgba").only_mask


@pytest.mark.parametrize(
    "fields",
    [
        {"size": "huge"},
        {"format": "gif"},
        {"channels": "rgb"},
        {"crop_margin": "60%"},
        {"bg_image_url": "http://x"},
        {"add_shadow": "true"},
        {"colour": "red"},
        {"crop": "maybe"},
    ],
)
def test_refused(fields: dict[str, str]) -> None:
    with pytest.raises(InvalidParameter):
        removebg_params.parse_removebg(fields)


def test_classifier_knobs_accepted_and_shadow_off_accepted() -> None:
    options = parse(type="person", type_level="2", semitransparency="true", add_shadow="false")
    assert options.format is OutputFormat.PNG


def test_headers_and_json_carry_the_foreground_box() -> None:
    headers = removebg.response_headers((600, 400), (10, 20, 110, 220))
    assert headers["X-Width"] == "600" and headers["X-Height"] == "400"
    assert (
        headers["X-Foreground-Left"],
        headers["X-Foreground-Top"],
        headers["X-Foreground-Width"],
        headers["X-Foreground-Height"],
    ) == ("10", "20", "100", "200")
    assert headers["X-Credits-Charged"] == "1" and headers["X-Type"]
    data = removebg.json_result(b"abc", None)["data"]
    assert data["result_b64"] == "YWJj" and data["foreground_width"] == 0


def test_zip_has_colour_jpeg_and_alpha_png_at_the_output_size() -> None:
    photo = Image.new("RGB", (400, 300), (200, 10, 10))
    prepared = PreparedImage(photo, np.zeros((320, 320, 3), np.uint8), input_bytes=1000)
    mask = np.zeros((320, 320), np.uint8)
    mask[80:240, 80:240] = 128
    options = parse(size="preview")  # 0.25 MP: 400x300 is below it, kept as it is
    zipped = removebg.zip_result(prepared, mask, options)
    archive = zipfile.ZipFile(io.BytesIO(zipped.data))
    assert sorted(archive.namelist()) == ["alpha.png", "color.jpg"]
    assert Image.open(io.BytesIO(archive.read("color.jpg"))).format == "JPEG"
    matte = Image.open(io.BytesIO(archive.read("alpha.png")))
    assert matte.mode == "L" and matte.size == zipped.size == (400, 300)
    assert matte.getpixel((200, 150)) == 128 and matte.getpixel((5, 5)) == 0
    left, top, right, bottom = zipped.foreground
    assert 90 < left < 110 and 65 < top < 85 and 290 < right < 310 and 215 < bottom < 235


def test_error_shape() -> None:
    body = RateLimited("Limit of 10 per hour reached").removebg_body()
    assert body == {
        "errors": [
            {
                "title": "Rate limit exceeded",
                "code": "rate_limited",
                "detail": "Limit of 10 per hour reached",
            }
        ]
    }


@pytest.mark.parametrize(
    ("value", "archive"),
    [(None, False), ("", False), (" ZIP ", True), ("zip", True), ("png", False), (["zip"], False)],
)
def test_only_format_zip_asks_for_the_archive(value: object, archive: bool) -> None:
    """The one decision the route takes before the budget is spent: a list is refused later,
    on the single-result path, as every bad value is."""
    assert removebg_params.wants_archive({"format": value}) is archive
