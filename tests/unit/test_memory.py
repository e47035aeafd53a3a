"""Memory needed by one image, known from its header: the admission weight."""

from __future__ import annotations

import pytest

from contract.errors import PayloadTooLarge, UnsupportedMediaType
from optimizer import OutputFormat, parse_options
from optimizer.memory import BYTES_PER_PIXEL, FIXED_BYTES, bytes_needed
from optimizer.source import memory_needed
from tests import images

MAX = 10**8


def per_pixel(needed: int, pixels: int) -> float:
    return (needed - FIXED_BYTES) / pixels


def test_weight_follows_mode_and_format() -> None:
    rgb_png = bytes_needed((1000, 1000), "RGB", OutputFormat.PNG)
    assert per_pixel(rgb_png, 10**6) == pytest.approx(BYTES_PER_PIXEL["RGB"][OutputFormat.PNG])
    assert bytes_needed((1000, 1000), "RGB", OutputFormat.AVIF) > rgb_png
    wide = bytes_needed((1000, 1000), "I;16B", OutputFormat.PNG)
    assert per_pixel(wide, 10**6) == pytest.approx(BYTES_PER_PIXEL["I;16"][OutputFormat.PNG])


def test_an_unknown_mode_counts_as_the_heaviest() -> None:
    heaviest = max(row[OutputFormat.WEBP] for row in BYTES_PER_PIXEL.values())
    needed = bytes_needed((100, 100), "HSV", OutputFormat.WEBP)
    assert per_pixel(needed, 10_000) == pytest.approx(heaviest)


def test_a_jpeg_fitted_into_a_box_weighs_its_reduced_decode() -> None:
    full = memory_needed(images.large_jpeg(), parse_options({}), max_input_pixels=MAX)
    boxed = memory_needed(
        images.large_jpeg(), parse_options({"max_width": "800"}), max_input_pixels=MAX
    )
    width, height = images.LARGE_SIZE
    assert per_pixel(full, width * height) == pytest.approx(
        BYTES_PER_PIXEL["RGB"][OutputFormat.PNG]
    )
    assert boxed < full / 8  # decoded at 1/4 scale or less: 1/16 of the pixels


def test_the_header_decides_before_any_pixel_is_decoded() -> None:
    needed = memory_needed(images.grey16_png(), parse_options({}), max_input_pixels=MAX)
    assert needed > FIXED_BYTES
    with pytest.raises(PayloadTooLarge):
        memory_needed(images.oversized_header_png(), parse_options({}), max_input_pixels=MAX)
    with pytest.raises(UnsupportedMediaType):
        memory_needed(images.text_file(), parse_options({}), max_input_pixels=MAX)
