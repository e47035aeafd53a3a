"""prepare + finish with composition, around synthetic masks (no model): the canvas, scale and
position, the region of interest, background images, the drop shadow, mask output, memory."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from contract.errors import InvalidParameter, PayloadTooLarge
from optimizer import decode_background, finish, memory_needed, parse_options, prepare, read_source
from optimizer.pipeline import model_input
from tests import images

MODEL_SIZE = 320
MAX_PIXELS = 50_000_000
SQUARE = "astronaut"  # 512 x 512: mask coordinates (320 grid) scale by 1.6
BOX_320 = (100, 60, 200, 260)  # 100 x 200 on the model's grid: (160, 96, 320, 416) on the photo
TOLERANCE = 3


def rect_mask(bounds: tuple[int, int, int, int] = BOX_320) -> np.ndarray:
    left, top, right, bottom = bounds
    mask = np.zeros((MODEL_SIZE, MODEL_SIZE), dtype=np.uint8)
    mask[top:bottom, left:right] = 255
    return mask


def run(
    raw: dict,
    data: bytes | None = None,
    mask: np.ndarray | None = None,
    background: bytes | None = None,
) -> tuple[Image.Image, tuple[int, int, int, int] | None]:
    digest = None if background is None else "bg"
    options = parse_options(raw, background_digest=digest)
    prepared = prepare(
        read_source(data or images.photo_png(SQUARE), options, max_input_pixels=MAX_PIXELS),
        options,
        model_size=None,
    )
    decoded = None
    if background is not None:
        decoded = decode_background(background, max_input_pixels=MAX_PIXELS, canvas=options.canvas)
    result = finish(prepared, rect_mask() if mask is None else mask, options, decoded)
    image = Image.open(io.BytesIO(result.data))
    image.load()
    assert image.size == (result.width, result.height)
    return image, result.foreground


def near(actual: tuple, expected: tuple) -> bool:
    return all(abs(a - b) <= TOLERANCE for a, b in zip(actual, expected, strict=True))


def alpha_of(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGBA").getchannel("A"))


# --- canvas, scale, position ---------------------------------------------------------------


def test_canvas_places_the_subject_at_scale_and_centred() -> None:
    image, foreground = run({"canvas": "1000x1000", "scale": "90%"})
    assert image.size == (1000, 1000)
    # 160 x 320 scaled by 0.9 * 1000 / 320: 450 x 900, centred
    assert near(foreground, (275, 50, 725, 950)), foreground
    alpha = alpha_of(image)
    assert alpha[:40].max() == 0 and alpha[:, :260].max() == 0  # the canvas around is clear


def test_a_canvas_alone_fills_it_with_the_subject() -> None:
    _, foreground = run({"canvas": "800x800"})
    assert near(foreground, (200, 0, 600, 800)), foreground


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ("0%", (0, 0, 250, 500)),
        ("100%", (750, 500, 1000, 1000)),
        ("0% 100%", (0, 500, 250, 1000)),
        ("100% 0%", (750, 0, 1000, 500)),
    ],
)
def test_position_puts_the_subject_at_the_edges(position: str, expected: tuple) -> None:
    _, foreground = run({"canvas": "1000x1000", "scale": "50%", "position": position})
    assert near(foreground, expected), foreground


def test_scale_without_a_canvas_keeps_the_photos_size() -> None:
    image, foreground = run({"scale": "50%"})
    assert image.size == (512, 512)
    # 160 x 320 -> larger relative side 320/512; 50 % of 512 = 256 px high, centred
    assert near(foreground, (192, 128, 320, 384)), foreground


def test_position_alone_moves_the_subject_at_its_size() -> None:
    _, foreground = run({"position": "100% 100%"})
    assert near(foreground, (352, 192, 512, 512)), foreground


def test_the_canvas_is_fitted_into_max_width() -> None:
    image, foreground = run({"canvas": "1000x1000", "scale": "90%", "max_width": 500})
    assert image.size == (500, 500)
    assert near(foreground, (137, 25, 362, 475)), foreground


def test_crop_margins_stay_around_the_subject_on_the_canvas() -> None:
    # a 160 x 320 subject with 40 px left/right and none above/below, on a square canvas
    image, foreground = run(
        {"crop": "true", "crop_margin": "0 40px", "canvas": "600x600", "bg_color": "white"}
    )
    assert image.mode == "RGB"
    # the box placed is 240 x 320: factor 600/320 = 1.875; the subject 300 x 600 centred
    assert near(foreground, (150, 0, 450, 600)), foreground


def test_jpeg_on_a_transparent_canvas_is_white_around() -> None:
    image, _ = run({"canvas": "800x800", "scale": "50%", "format": "jpeg"})
    assert image.mode == "RGB"
    assert all(channel >= 250 for channel in image.getpixel((5, 5)))


# --- only_mask keeps the geometry and nothing else -----------------------------------------


def test_only_mask_keeps_geometry_but_no_shadow_background_or_edges() -> None:
    placed = {"canvas": "700x500", "scale": "80%", "position": "20% 70%"}
    mask, mask_box = run({**placed, "only_mask": "true", "shadow": "drop", "bg_color": "red"})
    cutout, cutout_box = run(placed)
    assert mask.mode == "L"
    assert mask.size == cutout.size == (700, 500)
    assert mask_box == cutout_box
    assert np.array_equal(np.asarray(mask), alpha_of(cutout))


# --- region of interest --------------------------------------------------------------------


def test_the_model_sees_the_region_alone() -> None:
    options = parse_options({"roi": "64px 128px 320px 512px"})
    prepared = prepare(
        read_source(images.photo_png(SQUARE), options, max_input_pixels=MAX_PIXELS),
        options,
        model_size=MODEL_SIZE,
    )
    assert prepared.region == (64, 128, 320, 512)
    expected = model_input(images.photo_image(SQUARE), MODEL_SIZE, (64, 128, 320, 512))
    assert np.array_equal(prepared.model_input, expected)


def test_nothing_outside_the_region_is_foreground() -> None:
    full = np.full((MODEL_SIZE, MODEL_SIZE), 255, np.uint8)  # the model says: all subject
    image, foreground = run({"roi": "25% 50% 75% 100%"}, mask=full)
    alpha = alpha_of(image)
    assert foreground == (128, 256, 384, 512)
    assert alpha[:256].max() == 0
    assert alpha[:, :128].max() == 0 and alpha[:, 384:].max() == 0
    assert alpha[300:500, 140:370].min() == 255


def test_the_regions_mask_covers_the_region() -> None:
    # the mask's left half is subject: on the photo, the left half of the region
    half = np.zeros((MODEL_SIZE, MODEL_SIZE), np.uint8)
    half[:, : MODEL_SIZE // 2] = 255
    _, foreground = run({"roi": "100px 0 300px 512px"}, mask=half)
    assert near(foreground, (100, 0, 200, 512)), foreground


@pytest.mark.parametrize("roi", ["0 0 513px 100px", "0 0 100px 600px", "300px 0 50% 100%"])
def test_a_region_outside_the_photo_is_refused(roi: str) -> None:
    options = parse_options({"roi": roi})
    with pytest.raises(InvalidParameter) as caught:
        prepare(
            read_source(images.photo_png(SQUARE), options, max_input_pixels=MAX_PIXELS),
            options,
            model_size=320,
        )
    assert "roi" in caught.value.details


@pytest.mark.parametrize(
    "raw", [{"roi": "0% 0% 100% 100%"}, {"scale": "90%"}, {"canvas": "500x500"}]
)
def test_placement_and_regions_decode_at_full_resolution(raw: dict) -> None:
    options = parse_options({**raw, "max_width": 1200})
    prepared = prepare(
        read_source(images.large_jpeg(), options, max_input_pixels=MAX_PIXELS),
        options,
        model_size=MODEL_SIZE,
    )
    assert prepared.image.size == images.LARGE_SIZE


# --- background image ----------------------------------------------------------------------


def halves(size: tuple[int, int], left: tuple, right: tuple) -> bytes:
    picture = Image.new("RGB", size, left)
    picture.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return images.encode(picture, "PNG")


def test_a_background_of_the_output_size_is_used_unchanged() -> None:
    backdrop = images.photo_image("coffee").resize((512, 512))
    image, _ = run({}, background=images.encode(backdrop, "PNG"))
    cutout, _ = run({})
    assert image.mode == "RGB"
    clear = alpha_of(cutout) == 0
    assert clear.sum() > 100_000
    assert np.array_equal(np.asarray(image)[clear], np.asarray(backdrop)[clear])


def test_a_background_is_scaled_to_cover_and_centred() -> None:
    # 300 x 100: red, then blue from x = 150; covering 512 x 512 keeps its middle 100 x 100
    image, _ = run({}, background=halves((300, 100), (255, 0, 0), (0, 0, 255)))
    assert image.size == (512, 512)
    assert image.getpixel((5, 5))[0] > 240 and image.getpixel((5, 5))[2] < 15
    assert image.getpixel((506, 5))[2] > 240 and image.getpixel((506, 5))[0] < 15


def test_a_background_fills_the_canvas_around_the_subject() -> None:
    image, _ = run(
        {"canvas": "600x400", "scale": "50%"},
        background=halves((600, 400), (0, 255, 0), (0, 255, 0)),
    )
    assert image.size == (600, 400)
    assert image.getpixel((3, 3)) == (0, 255, 0)


def test_a_background_that_is_not_an_image_names_the_option() -> None:
    with pytest.raises(InvalidParameter) as caught:
        decode_background(images.text_file(), max_input_pixels=MAX_PIXELS)
    assert "bg_image" in caught.value.details
    with pytest.raises(InvalidParameter):
        decode_background(images.truncated_png(), max_input_pixels=MAX_PIXELS)


def test_a_background_is_decoded_under_the_same_pixel_cap() -> None:
    with pytest.raises(PayloadTooLarge):
        decode_background(images.oversized_header_png(), max_input_pixels=MAX_PIXELS)


def test_a_large_jpeg_background_is_decoded_only_as_large_as_covering_needs() -> None:
    decoded = decode_background(images.large_jpeg(), max_input_pixels=MAX_PIXELS, canvas=(500, 300))
    assert 500 <= decoded.width < images.LARGE_SIZE[0]
    assert 300 <= decoded.height < images.LARGE_SIZE[1]


def test_only_mask_ignores_the_background() -> None:
    image, _ = run({"only_mask": "true"}, background=halves((64, 64), (9, 9, 9), (9, 9, 9)))
    assert image.mode == "L"
    assert image.getpixel((0, 0)) == 0


# --- drop shadow ---------------------------------------------------------------------------


@pytest.mark.parametrize("opacity", ["100", "50", "0"])
def test_a_shadow_alone_is_never_fully_opaque(opacity: str) -> None:
    placed = {"canvas": "600x600", "scale": "60%"}
    shadowed, _ = run({**placed, "shadow": "drop", "shadow_opacity": opacity})
    plain, _ = run(placed)
    beside = alpha_of(plain) == 0  # where the subject is not
    shadow_alpha = alpha_of(shadowed)[beside]
    assert shadow_alpha.max() < 255
    if opacity == "0":
        assert shadow_alpha.max() == 0
    else:
        assert shadow_alpha.max() > int(opacity) * 255 // 100 // 2  # a shadow is there
        colours = np.asarray(shadowed.convert("RGBA"))[beside & (alpha_of(shadowed) > 0)]
        assert colours[:, :3].max() == 0  # and it is black


def test_the_shadow_falls_down_right_under_the_subject_over_the_background() -> None:
    placed = {"canvas": "600x600", "scale": "60%", "bg_color": "white"}
    shadowed, box = run({**placed, "shadow": "drop", "shadow_opacity": "80"})
    plain, _ = run(placed)
    transparent, _ = run({"canvas": "600x600", "scale": "60%"})
    assert box is not None
    left, top, right, bottom = box
    shade = np.asarray(shadowed.convert("L"), np.int16)
    white = np.asarray(plain.convert("L"), np.int16)
    assert shade[bottom + 3, (left + right) // 2] < 230  # below the subject: darker
    assert shade[(top + bottom) // 2, right + 3] < 230  # to its right: darker
    assert shade[top - 10, (left + right) // 2] == 255  # above it: none
    assert shade[(top + bottom) // 2, left - 10] == 255  # to its left: none
    inside = alpha_of(transparent) == 255
    assert inside.sum() > 10_000
    assert np.array_equal(shade[inside], white[inside])  # under the subject


# --- edges ---------------------------------------------------------------------------------


def test_decontamination_never_changes_the_matte() -> None:
    soft = np.asarray(Image.fromarray(rect_mask()).resize((40, 40)).resize((320, 320)))
    kept, _ = run({}, mask=soft)
    cleaned, _ = run({"edges": "decontaminate"}, mask=soft)
    assert np.array_equal(alpha_of(kept), alpha_of(cleaned))
    assert not np.array_equal(np.asarray(kept), np.asarray(cleaned))


# --- memory admission ----------------------------------------------------------------------


def test_the_weight_of_a_request_includes_its_canvas_and_background() -> None:
    data = images.photo_jpeg("chelsea")  # 451 x 300

    def needed(raw: dict, background: bytes | None = None) -> int:
        options = parse_options(raw, background_digest=None if background is None else "bg")
        return memory_needed(data, options, max_input_pixels=MAX_PIXELS, background=background)

    plain = needed({})
    small, large = needed({"canvas": "500x500"}), needed({"canvas": "4000x4000"})
    assert plain < small < large
    assert large - plain > 4000 * 4000 * 10  # the canvas's pixels weigh
    backdrop = needed({}, background=images.large_jpeg())
    assert backdrop - needed({"shadow": "drop"}) > images.LARGE_SIZE[0] * images.LARGE_SIZE[1]


def test_a_background_that_is_not_an_image_fails_admission_naming_the_option() -> None:
    options = parse_options({}, background_digest="bg")
    with pytest.raises(InvalidParameter):
        memory_needed(
            images.photo_jpeg("chelsea"),
            options,
            max_input_pixels=MAX_PIXELS,
            background=images.text_file(),
        )
