"""Geometry on numbers (optimizer/geometry.py, optimizer/placement.py): fit_size (fit in a
box, never upscale), subject_bounds (crop box of the mask), margins, the region of interest,
placement on the canvas and covering it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from optimizer.geometry import (
    SUBJECT_ALPHA_THRESHOLD,
    Length,
    Margins,
    Roi,
    clip,
    fit_size,
    grow,
    resolve_roi,
    subject_bounds,
)
from optimizer.options import Margin
from optimizer.placement import (
    Layout,
    Placement,
    cover_box,
    fit_frame,
    original_position,
    place,
)

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


def test_subject_bounds_takes_four_margins() -> None:
    mask = rect_mask((200, 100), (50, 20, 90, 70))  # 40 x 50: larger side 50
    margins = Margins(Length(1), Length(2), Length(3), Length(10, percent=True))
    assert subject_bounds(mask, margins) == (45, 19, 92, 73)


# --- margins -------------------------------------------------------------------------------


def test_grow_moves_each_side_by_its_margin() -> None:
    margins = Margins(Length(10), Length(20), Length(30), Length(40))
    assert grow((100, 100, 200, 150), margins) == (60, 90, 220, 180)


def test_grow_percentages_are_of_the_larger_side() -> None:
    margins = Margins.all(Length(10, percent=True))
    assert grow((0, 0, 300, 100), margins) == (-30, -30, 330, 130)


def test_grow_is_not_clipped_clip_is() -> None:
    grown = grow((0, 0, 10, 10), Margins.all(Length(5)))
    assert grown == (-5, -5, 15, 15)
    assert clip(grown, (12, 8)) == (0, 0, 12, 8)


def test_uniform_margins() -> None:
    assert Margins.all(Length(3)).uniform == Length(3)
    assert Margins(Length(3), Length(4), Length(3), Length(4)).uniform is None


# --- region of interest --------------------------------------------------------------------


def px(value: int) -> Length:
    return Length(value)


def pc(value: int) -> Length:
    return Length(value, percent=True)


@pytest.mark.parametrize(
    ("roi", "bounds"),
    [
        (Roi(px(10), px(20), px(110), px(220)), (10, 20, 110, 220)),
        (Roi(pc(0), pc(0), pc(100), pc(100)), (0, 0, 400, 300)),
        (Roi(pc(25), pc(10), pc(75), pc(90)), (100, 30, 300, 270)),
        (Roi(px(0), pc(50), px(400), pc(100)), (0, 150, 400, 300)),
    ],
)
def test_resolve_roi(roi: Roi, bounds: tuple) -> None:
    assert resolve_roi(roi, (400, 300)) == bounds


@pytest.mark.parametrize(
    "roi",
    [
        Roi(px(10), px(20), px(401), px(220)),  # beyond the right edge
        Roi(px(10), px(20), px(110), px(301)),  # beyond the bottom
        Roi(px(200), px(0), pc(50), pc(100)),  # x1 == x2 once resolved
        Roi(pc(60), px(0), px(100), pc(100)),  # x1 > x2 once resolved
    ],
)
def test_resolve_roi_refuses_empty_and_outside_regions(roi: Roi) -> None:
    assert resolve_roi(roi, (400, 300)) is None


# --- placement -----------------------------------------------------------------------------

FRAME = (0, 0, 1000, 800)


def test_fit_frame_is_the_frame_fitted_into_the_limits() -> None:
    layout = fit_frame((100, 50, 500, 250), (200, None), None)
    assert layout == Layout((200, 100), (100, 50, 500, 250), (0, 0, 200, 100))
    assert layout.fills_output


def test_original_position_is_where_the_box_sits_in_the_frame() -> None:
    assert original_position(FRAME, (0, 0, 100, 100)) == (0.0, 0.0)
    assert original_position(FRAME, (900, 700, 1000, 800)) == (1.0, 1.0)
    assert original_position(FRAME, (450, 350, 550, 450)) == (0.5, 0.5)
    assert original_position(FRAME, FRAME) == (0.5, 0.5)  # no room: centred


def test_original_scale_and_position_change_nothing() -> None:
    layout = place(FRAME, (200, 100, 400, 500), Placement(), (None, None), None)
    assert layout == Layout((1000, 800), FRAME, FRAME)


def test_scale_makes_the_larger_relative_side_that_share_of_the_canvas() -> None:
    subject = (100, 100, 300, 500)  # 200 x 400: height is the larger relative side
    layout = place(FRAME, subject, Placement(scale=0.5, position=(0.5, 0.5)), (None, None), None)
    assert layout.size == (1000, 800)
    # factor 400/400 = 1.0 (0.5 * 800 = 400): the subject is 200 x 400, centred
    left, top = (1000 - 200) / 2, (800 - 400) / 2
    assert layout.target[0] == round(left - 100)
    assert layout.target[1] == round(top - 100)


@pytest.mark.parametrize(
    ("position", "subject_on_canvas"),
    [
        ((0.0, 0.0), (0, 0, 500, 500)),
        ((1.0, 1.0), (500, 500, 1000, 1000)),
        ((0.5, 0.5), (250, 250, 750, 750)),
        ((0.0, 1.0), (0, 500, 500, 1000)),
    ],
)
def test_position_shares_of_the_free_room(position: tuple, subject_on_canvas: tuple) -> None:
    frame = (0, 0, 100, 100)  # the subject is the whole frame: where it lands is the target
    placement = Placement(scale=0.5, position=position, canvas=(1000, 1000))
    layout = place(frame, frame, placement, (None, None), None)
    assert layout.target == subject_on_canvas
    assert layout.source == (0, 0, 100, 100)


def test_canvas_is_the_output_size_and_the_frame_is_clipped_to_it() -> None:
    # a 1000 x 800 photo whose 200 x 200 subject fills 100 % of a 400 x 400 canvas
    subject = (400, 300, 600, 500)
    placement = Placement(scale=1.0, position=(0.5, 0.5), canvas=(400, 400))
    layout = place(FRAME, subject, placement, (None, None), None)
    assert layout.size == (400, 400)
    assert layout.target == (0, 0, 400, 400)
    assert layout.source == pytest.approx(subject)  # factor 2: the subject alone fills it


def test_a_canvas_larger_than_the_photo_leaves_room_around_it() -> None:
    photo = (0, 0, 100, 50)
    placement = Placement(scale=None, position=(0.5, 0.5), canvas=(300, 300))
    layout = place(photo, photo, placement, (None, None), None)
    assert layout.size == (300, 300)
    assert layout.target == (100, 125, 200, 175)
    assert not layout.fills_output


def test_the_canvas_is_fitted_into_the_output_limits() -> None:
    photo = (0, 0, 100, 100)
    placement = Placement(scale=1.0, position=(0.5, 0.5), canvas=(2000, 1000))
    layout = place(photo, photo, placement, (500, None), None)
    assert layout.size == (500, 250)
    assert layout.target == (125, 0, 375, 250)


def test_the_canvas_is_fitted_into_the_pixel_cap() -> None:
    photo = (0, 0, 100, 100)
    placement = Placement(scale=1.0, position=(0.5, 0.5), canvas=(2000, 2000))
    assert place(photo, photo, placement, (None, None), 10_000).size == (100, 100)


def test_margins_beyond_the_photo_are_room_on_the_canvas() -> None:
    # the subject touches the photo's bottom; its 10 px margins still frame it on the canvas
    photo = (0, 0, 100, 100)
    placed = (10, 50, 90, 110)  # subject (20, 60, 80, 100) grown by 10 px
    placement = Placement(scale=1.0, position=(0.5, 0.5), canvas=(120, 120))
    layout = place(photo, placed, placement, (None, None), None)
    # 80 x 60 -> factor 1.5: 120 x 90, centred at top 15; the photo ends 15 px above its box
    assert layout.target == (0, 0, 120, 90)


def test_a_subject_scaled_past_the_canvas_is_clipped() -> None:
    frame = (0, 0, 100, 100)
    placement = Placement(scale=None, position=(0.5, 0.5), canvas=(50, 50))
    layout = place(frame, frame, placement, (None, None), None)
    assert layout.target == (0, 0, 50, 50)
    assert layout.source == (25, 25, 75, 75)


# --- covering the canvas -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "canvas", "box"),
    [
        ((1000, 1000), (1000, 1000), (0, 0, 1000, 1000)),
        ((2000, 1000), (1000, 1000), (500, 0, 1500, 1000)),
        ((1000, 2000), (500, 500), (0, 500, 1000, 1500)),
        ((400, 300), (800, 300), (0, 75, 400, 225)),
    ],
)
def test_cover_box_is_centred_with_the_canvas_aspect(
    size: tuple, canvas: tuple, box: tuple
) -> None:
    assert cover_box(size, canvas) == pytest.approx(box)


@pytest.mark.parametrize(
    ("size", "area"), [((4200, 2800), 10_000_000), ((1600, 1200), 1_500_000), ((451, 300), 99_999)]
)
def test_fit_size_keeps_within_an_area(size: tuple[int, int], area: int) -> None:
    width, height = fit_size(size, (None, None), area)
    assert width * height <= area
    assert (width + 1) * (height + 1) > area  # and is the largest that does
