"""fit_size (fit in a box, never upscale) and subject_bounds (crop box of the mask)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from optimizer.geometry import SUBJECT_ALPHA_THRESHOLD, fit_size, subject_bounds
from optimizer.options import Margin

# --- fit_size ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((4000, 3000), (1200, None), (1200, 900)),
        ((4000, 3000), (None, 600), (800, 600)),
        ((4000, 3000), (1200, 800), (1067, 800)),
        ((3000, 4000), (1200, 800), (600, 800)),
        ((1000, 1000), (300, 300), (300, 300)),
        ((1920, 1080), (1080, 1080), (1080, 608)),
    ],
)
def test_fit_size_examples(size: tuple, box: tuple, expected: tuple) -> None:
    assert fit_size(size, box) == expected


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((640, 480), (1200, 800)),
        ((640, 480), (None, None)),
        ((640, 480), (640, 480)),
        ((100, 50), (4000, None)),
        ((100, 50), (None, 4000)),
    ],
)
def test_fit_size_never_upscales(size: tuple, box: tuple) -> None:
    assert fit_size(size, box) == size


@pytest.mark.parametrize("width", [101, 640, 1999, 4000, 4321, 7])
@pytest.mark.parametrize("height", [99, 480, 3001, 4000, 13])
@pytest.mark.parametrize("box", [(100, None), (None, 100), (333, 777), (1200, 800), (4000, 100)])
def test_fit_size_stays_inside_the_box_and_keeps_the_ratio(
    width: int, height: int, box: tuple
) -> None:
    fitted_width, fitted_height = fit_size((width, height), box)
    max_width, max_height = box
    assert fitted_width <= width
    assert fitted_height <= height
    assert fitted_width >= 1
    assert fitted_height >= 1
    if max_width:
        assert fitted_width <= max_width
    if max_height:
        assert fitted_height <= max_height
    # one side touches its limit (or the original size), the other follows the ratio +-1 px
    limits = [
        limit
        for limit, fitted in ((max_width, fitted_width), (max_height, fitted_height))
        if limit and fitted == limit
    ]
    assert limits or (fitted_width, fitted_height) == (width, height)
    assert (
        abs(fitted_height - fitted_width * height / width) <= 1
        or abs(fitted_width - fitted_height * width / height) <= 1
    )


def test_fit_size_honours_either_side_alone() -> None:
    assert fit_size((2000, 1000), (500, None))[0] == 500
    assert fit_size((2000, 1000), (None, 500))[1] == 500
    assert fit_size((2000, 1000), (None, 500)) == (1000, 500)


def test_fit_size_of_an_extreme_strip_keeps_at_least_one_pixel() -> None:
    assert fit_size((4000, 2), (100, None)) == (100, 1)


# --- subject_bounds ------------------------------------------------------------------------


def rect_mask(
    size: tuple[int, int], bounds: tuple[int, int, int, int], value: int = 255
) -> Image.Image:
    width, height = size
    left, top, right, bottom = bounds
    pixels = np.zeros((height, width), dtype=np.uint8)
    pixels[top:bottom, left:right] = value
    return Image.fromarray(pixels, mode="L")


def test_subject_bounds_without_margin_is_the_tight_box() -> None:
    mask = rect_mask((200, 100), (50, 20, 90, 70))
    assert subject_bounds(mask, Margin()) == (50, 20, 90, 70)


def test_subject_bounds_single_pixel() -> None:
    mask = rect_mask((10, 10), (3, 4, 4, 5))
    assert subject_bounds(mask, Margin()) == (3, 4, 4, 5)


def test_subject_bounds_px_margin() -> None:
    mask = rect_mask((200, 100), (50, 20, 90, 70))
    assert subject_bounds(mask, Margin(10)) == (40, 10, 100, 80)


def test_subject_bounds_percent_margin_uses_the_larger_side() -> None:
    mask = rect_mask((200, 100), (50, 20, 90, 70))  # box 40 x 50: larger side 50
    assert subject_bounds(mask, Margin(10, percent=True)) == (45, 15, 95, 75)


def test_subject_bounds_margin_is_clipped_to_the_image() -> None:
    mask = rect_mask((200, 100), (5, 3, 195, 97))
    assert subject_bounds(mask, Margin(20)) == (0, 0, 200, 100)
    assert subject_bounds(mask, Margin(50, percent=True)) == (0, 0, 200, 100)


def test_subject_bounds_clipped_on_one_side_only() -> None:
    mask = rect_mask((200, 100), (0, 40, 10, 60))
    assert subject_bounds(mask, Margin(15)) == (0, 25, 25, 75)


def test_subject_bounds_of_an_empty_mask_is_none() -> None:
    assert subject_bounds(rect_mask((64, 64), (0, 0, 0, 0)), Margin(10)) is None


def test_subject_bounds_of_a_mask_at_the_threshold_is_none() -> None:
    mask = rect_mask((64, 64), (0, 0, 64, 64), value=SUBJECT_ALPHA_THRESHOLD)
    assert subject_bounds(mask, Margin()) is None


def test_subject_bounds_ignores_faint_pixels() -> None:
    pixels = np.zeros((100, 100), dtype=np.uint8)
    pixels[40:60, 30:50] = 255
    pixels[0, 0] = SUBJECT_ALPHA_THRESHOLD  # at the threshold: noise
    pixels[99, 99] = SUBJECT_ALPHA_THRESHOLD - 1
    pixels[5, 95] = 3
    assert subject_bounds(Image.fromarray(pixels, mode="L"), Margin()) == (30, 40, 50, 60)


def test_subject_bounds_counts_pixels_just_above_the_threshold() -> None:
    pixels = np.zeros((100, 100), dtype=np.uint8)
    pixels[40:60, 30:50] = 255
    pixels[2, 90] = SUBJECT_ALPHA_THRESHOLD + 1
    assert subject_bounds(Image.fromarray(pixels, mode="L"), Margin()) == (30, 2, 91, 60)


def test_subject_bounds_full_mask_is_the_whole_image() -> None:
    mask = rect_mask((37, 23), (0, 0, 37, 23))
    assert subject_bounds(mask, Margin()) == (0, 0, 37, 23)
