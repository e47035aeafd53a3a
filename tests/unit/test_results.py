"""Download names, Content-Disposition, result headers and the JSON result of the contract."""

from __future__ import annotations

import base64
import re

import pytest

from application.results import (
    content_disposition,
    download_name,
    optimization_summary,
    result_headers,
    result_json,
    safe_stem,
)
from optimizer import Result, parse_options
from optimizer.options import OutputFormat

PNG = parse_options({})
FORBIDDEN_IN_NAME = re.compile(r'[\x00-\x1f\x7f"\\/:;*?<>|]')

# --- download names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uploaded", "expected"),
    [
        ("cat.jpg", "cat_no_bg.png"),
        ("holiday photo.png", "holiday photo_no_bg.png"),
        ("archive.tar.gz", "archive.tar_no_bg.png"),
        ("noext", "noext_no_bg.png"),
        ("../../etc/passwd.png", "passwd_no_bg.png"),
        ("/etc/passwd", "passwd_no_bg.png"),
        ("C:\\x\\y.jpg", "y_no_bg.png"),
        ("..\\..\\windows\\win.ini", "win_no_bg.png"),
        ("", "image_no_bg.png"),
        (None, "image_no_bg.png"),
        ("..", "image_no_bg.png"),
        ("../", "image_no_bg.png"),
        ("   ", "image_no_bg.png"),
        ('"";.png', "image_no_bg.png"),
    ],
)
def test_download_name(uploaded: str | None, expected: str) -> None:
    assert download_name(uploaded, PNG) == expected


@pytest.mark.parametrize(
    "uploaded",
    [
        'evil"name.png',
        "a\r\nSet-Cookie: x=1.png",
        "tab\there.jpg",
        "nul\x00byte.png",
        "semi;colon.png",
        "del\x7f.png",
        'q"uo"te"s.jpg',
        "per%2fcent.png",
        "a<b>c|d?e*f.png",
    ],
)
def test_download_name_has_no_control_quote_or_separator_characters(uploaded: str) -> None:
    name = download_name(uploaded, PNG)
    assert not FORBIDDEN_IN_NAME.search(name), name
    assert "%" not in name
    assert name.endswith("_no_bg.png")
    assert len(name) > len("_no_bg.png")


def test_download_name_is_bounded() -> None:
    name = download_name("x" * 5000 + ".png", PNG)
    assert len(name) <= 100 + len("_no_bg.png")


@pytest.mark.parametrize(
    ("fmt", "extension"),
    [("PNG", "png"), ("JPEG", "jpg"), ("JPG", "jpg"), ("WEBP", "webp"), ("AVIF", "avif")],
)
def test_download_name_extension_follows_the_format(fmt: str, extension: str) -> None:
    assert download_name("photo.png", parse_options({"format": fmt})) == f"photo_no_bg.{extension}"


def test_safe_stem_keeps_unicode_letters() -> None:
    assert safe_stem("café.jpg") == "café"


# --- Content-Disposition -------------------------------------------------------------------


def test_content_disposition_ascii() -> None:
    assert content_disposition("cat_no_bg.png") == 'attachment; filename="cat_no_bg.png"'


def test_content_disposition_ascii_with_space() -> None:
    header = content_disposition("my cat_no_bg.png")
    assert header == 'attachment; filename="my cat_no_bg.png"'


@pytest.mark.parametrize(
    ("name", "fallback", "encoded"),
    [
        ("café_no_bg.png", "cafe_no_bg.png", "caf%C3%A9_no_bg.png"),
        ("Ärger über_no_bg.jpg", "Arger uber_no_bg.jpg", "%C3%84rger%20%C3%BCber_no_bg.jpg"),
    ],
)
def test_content_disposition_non_ascii(name: str, fallback: str, encoded: str) -> None:
    header = content_disposition(name)
    header.encode("ascii")  # no raw non-ASCII in a header
    assert header.startswith("attachment; ")
    assert f'filename="{fallback}"' in header
    assert f"filename*=UTF-8''{encoded}" in header


def test_content_disposition_non_latin_name_has_an_ascii_fallback() -> None:
    name = download_name("猫の写真.jpg", PNG)
    header = content_disposition(name)
    header.encode("ascii")
    fallback = re.search(r'filename="([^"]*)"', header)
    assert fallback is not None
    assert fallback.group(1).endswith(".png")
    assert re.fullmatch(r"[\x20-\x7e]+", fallback.group(1))
    assert "filename*=UTF-8''%E7%8C%AB" in header


def test_content_disposition_of_a_download_name_round_trips() -> None:
    from urllib.parse import unquote

    name = download_name("résumé photo.JPG", parse_options({"format": "webp"}))
    header = content_disposition(name)
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == name == "résumé photo_no_bg.webp"


# --- headers and JSON result ---------------------------------------------------------------


def make_result(fmt: OutputFormat = OutputFormat.WEBP) -> Result:
    return Result(
        b"\x00\x01binary",
        fmt,
        1200,
        900,
        1000,
        {"decode": 1.0, "preprocess": 1.0, "compose": 1.0, "encode": 1.0},
    )


def test_result_json_has_every_key_of_the_contract() -> None:
    options = parse_options({"format": "webp", "quality": "70"})
    body = result_json(make_result(), options)
    assert set(body) == {
        "success",
        "image",
        "mimetype",
        "size",
        "original_size",
        "width",
        "height",
        "optimization",
    }
    assert set(body["optimization"]) == {
        "format",
        "quality",
        "dimensions",
        "compression_ratio",
        "preset",
    }
    assert body["success"] is True
    assert base64.b64decode(body["image"]) == b"\x00\x01binary"
    assert body["mimetype"] == "image/webp"
    assert body["size"] == 8
    assert body["original_size"] == 1000
    assert (body["width"], body["height"]) == (1200, 900)
    assert body["optimization"] == {
        "format": "WEBP",
        "quality": 70,
        "dimensions": "1200x900",
        "compression_ratio": "99%",
        "preset": None,
    }


def test_result_json_names_the_preset() -> None:
    options = parse_options({"preset": "mobile"})
    summary = optimization_summary(make_result(), options)
    assert summary["preset"] == "mobile"
    assert summary["quality"] == 70


def test_result_json_mimetype_for_jpeg() -> None:
    body = result_json(make_result(OutputFormat.JPEG), parse_options({"format": "jpg"}))
    assert body["mimetype"] == "image/jpeg"
    assert body["optimization"]["format"] == "JPEG"


@pytest.mark.parametrize(
    ("raw", "used"), [({}, "false"), ({"format": "PNG"}, "true"), ({"quality": ""}, "false")]
)
def test_result_headers(raw: dict, used: str) -> None:
    headers = result_headers(make_result(), parse_options(raw), 123.6, 0.25)
    assert headers == {
        "X-Foreground-Coverage": "0.2500",
        "X-Original-Size": "1000",
        "X-Optimized-Size": "8",
        "X-Optimization-Used": used,
        "X-Image-Width": "1200",
        "X-Image-Height": "900",
        "X-Processing-Time-Ms": "124",
    }


def test_all_non_ascii_stem_gets_a_readable_fallback() -> None:
    from application.results import content_disposition

    header = content_disposition("图片_no_bg.png")
    assert 'filename="image_no_bg.png"' in header
    assert "filename*=UTF-8''%E5%9B%BE%E7%89%87_no_bg.png" in header


def test_full_width_digits_are_not_numbers() -> None:
    import pytest

    from contract.errors import InvalidParameter
    from optimizer import parse_options

    with pytest.raises(InvalidParameter):
        parse_options({"quality": "８０"})
