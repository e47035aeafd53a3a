"""remove.bg's parameters mapped to ours (application/removebg_params.py), its answers'
headers and bodies (application/removebg.py, removebg_archive.py), and the codes its errors
get at the edge (gateway/removebg_errors.py)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from PIL import Image

from application import removebg
from application.gate import units
from application.removebg_archive import zip_result
from application.removebg_params import RemoveBgRequest, parse_removebg
from application.replies import Upload
from contract import errors
from contract.errors import ServiceError
from gateway.removebg_errors import removebg_code
from optimizer import OutputFormat, PreparedImage

B64 = "aGVsbG8="  # any base64: parsing reads no image


def parse(**fields: Any) -> RemoveBgRequest:
    return parse_removebg({"image_file_b64": B64, **fields})


def code_of(call: Any) -> tuple[int, str]:
    with pytest.raises(ServiceError) as raised:
        call()
    found = removebg_code(raised.value)
    assert found is not None, raised.value
    return found


@pytest.mark.parametrize(
    ("size", "pixels", "credits"),
    [
        (None, 250_000, "0.25"),
        ("preview", 250_000, "0.25"),
        ("small", 250_000, "0.25"),
        ("regular", 250_000, "0.25"),
        ("medium", 1_500_000, "1"),
        ("hd", 4_000_000, "1"),
        ("full", 10_000_000, "1"),  # as PNG (format=auto with transparency): 10 MP
        ("4k", 10_000_000, "1"),
        ("auto", 10_000_000, "1"),
        ("50MP", 50_000_000, "1"),
    ],
)
def test_sizes_and_their_credits(size: str | None, pixels: int, credits: str) -> None:
    request = parse(**({"size": size} if size else {}))
    assert request.options.max_output_pixels == pixels
    assert units(request.credits) == credits


@pytest.mark.parametrize(("fmt", "pixels"), [("jpg", 25_000_000), ("zip", 25_000_000)])
def test_full_size_is_25_megapixels_but_as_png(fmt: str, pixels: int) -> None:
    assert parse(size="full", format=fmt).options.max_output_pixels == pixels
    assert parse(size="full", format="png").options.max_output_pixels == 10_000_000
    opaque = parse(size="full", bg_color="white").options  # auto on white: a JPG
    assert opaque.format is OutputFormat.JPEG and opaque.max_output_pixels == 25_000_000


def test_auto_format_is_decided_by_the_result_unless_it_must_be_opaque() -> None:
    transparent = parse().options
    assert transparent.format is OutputFormat.PNG
    assert transparent.opaque_format is OutputFormat.JPEG  # if no pixel is transparent
    assert parse(bg_color="81d4fa").options.format is OutputFormat.JPEG
    assert parse(channels="alpha").options.format is OutputFormat.JPEG
    half = parse(bg_color="81d4fa80").options
    assert half.format is OutputFormat.PNG and half.opaque_format is OutputFormat.JPEG
    fixed = parse(format="png", bg_color="red").options
    assert fixed.format is OutputFormat.PNG and fixed.opaque_format is None


@pytest.mark.parametrize(
    ("fmt", "expected", "archive"),
    [("png", "PNG", False), ("jpg", "JPEG", False), ("webp", "WEBP", False), ("zip", "JPEG", True)],
)
def test_formats(fmt: str, expected: str, archive: bool) -> None:
    request = parse(format=fmt)
    assert request.options.format.value == expected
    assert request.archive is archive


def test_colours_with_and_without_hash_and_names() -> None:
    assert parse(bg_color="81d4fa").options.bg_color == (0x81, 0xD4, 0xFA, 255)
    assert parse(bg_color="fff").options.bg_color == (255, 255, 255, 255)
    assert parse(bg_color="green").options.bg_color == (0, 128, 0, 255)


@pytest.mark.parametrize(
    ("margin", "sides"),
    [
        ("30px", (30, 30, 30, 30)),
        ("30", (30, 30, 30, 30)),
        ("10px 5px", (10, 5, 10, 5)),
        ("1px 2px 3px 4px", (1, 2, 3, 4)),
    ],
)
def test_crop_margin_of_one_two_or_four_values(margin: str, sides: tuple[int, ...]) -> None:
    options = parse(crop="true", crop_margin=margin).options
    margins = options.crop_margin
    found = (margins.top.value, margins.right.value, margins.bottom.value, margins.left.value)
    assert options.crop and found == sides


def test_geometry_reaches_the_composition() -> None:
    options = parse(scale="50%", position="20% 80%", roi="10px 10px 90% 90%").options
    assert options.scale == 50 and options.position == (20, 80) and options.roi is not None
    centred = parse(scale="60%").options
    assert centred.position == (50, 50)  # scale implies center
    assert parse(scale="original").options.scale is None


def test_channels_rgba_corrects_the_edges_and_alpha_is_the_mask() -> None:
    assert parse().options.decontaminate and not parse().options.only_mask
    assert parse(channels="alpha").options.only_mask


@pytest.mark.parametrize(
    "fields", [{"add_shadow": "true"}, {"shadow_type": "drop"}, {"shadow_type": "car"}]
)
def test_shadows_are_the_drop_shadow(fields: dict[str, str]) -> None:
    options = parse(**fields, shadow_opacity="70").options
    assert options.shadow and options.shadow_opacity == 70
    assert not parse(add_shadow="false").options.shadow


@pytest.mark.parametrize(
    ("fields", "header"),
    [
        ({}, "other"),
        ({"type": "person"}, "person"),
        ({"type": "car", "type_level": "2"}, "car"),
        ({"type": "graphic", "type_level": "1"}, "other"),
        ({"type": "graphic", "type_level": "latest"}, "graphics"),
        ({"type": "transportation", "type_level": "2"}, "transportation"),
        ({"type": "person", "type_level": "none"}, None),
    ],
)
def test_x_type_names_the_type_asked_for(fields: dict[str, str], header: str | None) -> None:
    assert parse(**fields).type_header == header


def test_accepted_without_effect_and_unknown_parameters_ignored() -> None:
    request = parse(semitransparency="false", shadow_method="legacy", colour="red")
    assert request.options == parse().options


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"size": "huge"}, "invalid_size"),
        ({"format": "gif"}, "invalid_format"),
        ({"channels": "rgb"}, "invalid_channels"),
        ({"bg_color": "nope"}, "invalid_bg_color"),
        ({"scale": "5%"}, "invalid_scale"),
        ({"position": "left"}, "invalid_position"),
        ({"roi": "0 0 1"}, "invalid_roi"),
        ({"roi": "50% 50% 50% 90%"}, "roi_region_empty"),
        ({"crop_margin": "1px 2px 3px"}, "invalid_crop_margin"),
        ({"crop_margin": "60%"}, "invalid_crop_margin"),
        ({"crop": "maybe"}, "invalid_crop"),
        ({"type": "spaceship"}, "invalid_type"),
        ({"type_level": "3"}, "invalid_type_level"),
        ({"shadow_type": "neon"}, "invalid_shadow_type"),
        ({"shadow_opacity": "150"}, "invalid_shadow_opacity"),
        ({"add_shadow": "perhaps"}, "invalid_add_shadow"),
        ({"semitransparency": "perhaps"}, "invalid_semitransparency"),
        ({"bg_color": "red", "bg_image_url": "http://x/y.jpg"}, "multiple_bg_sources"),
        ({"image_url": "http://x/y.jpg"}, "multiple_sources"),
    ],
)
def test_each_bad_parameter_gets_its_code(fields: dict[str, str], code: str) -> None:
    assert code_of(lambda: parse(**fields)) == (400, code)


def test_missing_and_multiple_sources() -> None:
    assert code_of(lambda: parse_removebg({"size": "full"})) == (400, "missing_source")
    upload = Upload("a.jpg", b"x")
    both = code_of(lambda: parse_removebg({"image_file_b64": B64}, upload))
    assert both == (400, "multiple_sources")
    backdrop = Upload("b.jpg", b"y")
    fields = {"bg_color": "red"}
    assert code_of(lambda: parse_removebg(fields, upload, backdrop)) == (400, "multiple_bg_sources")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (errors.Unauthorized("Missing API key"), (403, "auth_failed")),
        (errors.RateLimited("spent"), (429, "rate_limit_exceeded")),
        (errors.PayloadTooLarge("body too large"), (400, "file_too_large")),
        (errors.TooManyPixels("60 MP"), (400, "resolution_too_high")),
        (errors.UnsupportedMediaType("text"), (400, "invalid_file_type")),
        (errors.InvalidImage("truncated"), (400, "failed_to_read_image")),
        (errors.NoSubject("nothing"), (400, "unknown_foreground")),
        (errors.InvalidParameter("bad", parameter="image_url"), (400, "invalid_image_url")),
        (
            errors.InvalidImage("404", parameter="image_url", problem=errors.DOWNLOAD),
            (400, "failed_image_download"),
        ),
        (
            errors.InvalidImage("404", parameter="bg_image_url", problem=errors.DOWNLOAD),
            (400, "failed_bg_download"),
        ),
        (
            errors.InvalidParameter("outside", parameter="roi", problem=errors.OUTSIDE),
            (400, "roi_exceeds_bounds"),
        ),
        (errors.Overloaded("busy"), None),
        (errors.Unavailable("down"), None),
    ],
)
def test_the_edge_gives_remove_bg_codes(
    error: ServiceError, expected: tuple[int, str] | None
) -> None:
    assert removebg_code(error) == expected


def test_headers_and_json_carry_the_foreground_box_and_credits() -> None:
    headers = removebg.response_headers(parse(), (600, 400), (10, 20, 110, 220))
    assert headers["X-Width"] == "600" and headers["X-Height"] == "400"
    assert (
        headers["X-Foreground-Left"],
        headers["X-Foreground-Top"],
        headers["X-Foreground-Width"],
        headers["X-Foreground-Height"],
    ) == ("10", "20", "100", "200")
    assert headers["X-Credits-Charged"] == "0.25" and headers["X-Type"] == "other"
    full = removebg.response_headers(parse(size="full", type_level="none"), (1, 1), None)
    assert full["X-Credits-Charged"] == "1" and "X-Type" not in full
    data = removebg.json_result(b"abc", None)["data"]
    assert data["result_b64"] == "YWJj" and data["foreground_width"] == 0


def test_account_counts_credits_to_the_quarter() -> None:
    body = removebg.account_body(Fraction(39, 4))["data"]["attributes"]
    assert body["credits"]["total"] == 9.75 and body["api"]["free_calls"] == 9
    whole = removebg.account_body(Fraction(10))["data"]["attributes"]["credits"]["total"]
    assert whole == 10 and isinstance(whole, int)


def test_zip_has_edge_corrected_colours_and_the_alpha_at_the_output_size() -> None:
    green, red = (0, 200, 0), (200, 10, 10)
    photo = Image.new("RGB", (400, 300), green)
    photo.paste(red, (100, 75, 300, 225))
    prepared = PreparedImage(photo, np.zeros((320, 320, 3), np.uint8), input_bytes=1000)
    mask = np.zeros((320, 320), np.uint8)
    mask[80:240, 80:240] = 255
    mask[76:80, 80:240] = 128  # a soft band along the top edge, over the green
    options = parse(size="preview").options  # 0.25 MP: 400x300 is below it, kept as it is
    zipped = zip_result(prepared, mask, options)
    archive = zipfile.ZipFile(io.BytesIO(zipped.data))
    assert sorted(archive.namelist()) == ["alpha.png", "color.jpg"]
    colour = Image.open(io.BytesIO(archive.read("color.jpg"))).convert("RGB")
    matte = Image.open(io.BytesIO(archive.read("alpha.png")))
    assert matte.mode == "L" and matte.size == colour.size == zipped.size == (400, 300)
    assert matte.getpixel((200, 150)) == 255 and matte.getpixel((5, 5)) == 0
    soft_rows = [y for y in range(60, 80) if 0 < matte.getpixel((200, y)) < 255]
    assert soft_rows
    plain = zip_result(prepared, mask, replace(options, decontaminate=False))
    plain_colour = Image.open(io.BytesIO(zipfile.ZipFile(io.BytesIO(plain.data)).read("color.jpg")))
    y = soft_rows[len(soft_rows) // 2]
    assert colour.getpixel((200, y))[1] < plain_colour.convert("RGB").getpixel((200, y))[1]
