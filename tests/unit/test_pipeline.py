"""prepare + finish around a synthetic mask (no model): sizes, alpha, crop, mask, background."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from optimizer import Result, finish, parse_options, prepare, read_source
from optimizer.options import OutputFormat
from tests import images

MODEL_SIZE = 320
MAX_PIXELS = 50_000_000
LANCZOS = Image.Resampling.LANCZOS


def ellipse_mask(size: int = MODEL_SIZE) -> np.ndarray:
    """255 inside an ellipse centred in the square (semi-axes size/4 and size/3), 0 outside."""
    yy, xx = np.mgrid[0:size, 0:size]
    inside = ((xx - size / 2) / (size / 4)) ** 2 + ((yy - size / 2) / (size / 3)) ** 2 <= 1
    return np.where(inside, 255, 0).astype(np.uint8)


def rect_mask(bounds: tuple[int, int, int, int], size: int = MODEL_SIZE) -> np.ndarray:
    left, top, right, bottom = bounds
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[top:bottom, left:right] = 255
    return mask


def run(
    data: bytes, raw_options: dict, mask: np.ndarray | None = None
) -> tuple[Result, Image.Image]:
    options = parse_options(raw_options)
    prepared = prepare(
        read_source(data, options, max_input_pixels=MAX_PIXELS), options, model_size=MODEL_SIZE
    )
    result = finish(prepared, ellipse_mask() if mask is None else mask, options)
    image = Image.open(io.BytesIO(result.data))
    image.load()
    return result, image


def test_prepare_gives_the_model_a_square_uint8_rgb() -> None:
    options = parse_options({})
    prepared = prepare(
        read_source(images.photo_jpeg("coffee"), options, max_input_pixels=MAX_PIXELS),
        options,
        model_size=MODEL_SIZE,
    )
    assert prepared.model_input.shape == (MODEL_SIZE, MODEL_SIZE, 3)
    assert prepared.model_input.dtype == np.uint8
    assert prepared.image.size == (600, 400)
    assert prepared.input_bytes == len(images.photo_jpeg("coffee"))
    assert set(prepared.timings_ms) == {"decode", "preprocess"}


def test_default_png_keeps_the_size_and_uses_the_mask_as_alpha() -> None:
    data = images.photo_png("coffee")
    result, image = run(data, {})
    assert result.format is OutputFormat.PNG
    assert image.format == "PNG"
    assert image.mode == "RGBA"
    assert image.size == (600, 400) == (result.width, result.height)
    expected_alpha = Image.fromarray(ellipse_mask(), mode="L").resize((600, 400), LANCZOS)
    assert np.array_equal(np.asarray(image.getchannel("A")), np.asarray(expected_alpha))
    # colours are untouched where the subject is
    source = np.asarray(images.photo_image("coffee"))
    assert np.array_equal(np.asarray(image.convert("RGB"))[200, 300], source[200, 300])


def test_max_width_fits_keeping_the_ratio() -> None:
    result, image = run(images.photo_jpeg("coffee"), {"max_width": 300})
    assert image.size == (300, 200) == (result.width, result.height)


def test_max_height_fits_keeping_the_ratio() -> None:
    _, image = run(images.photo_jpeg("rocket"), {"max_height": 200})
    assert image.height == 200
    assert abs(image.width - 200 * 640 / 427) <= 1


def test_box_larger_than_the_image_does_not_upscale() -> None:
    _, image = run(images.photo_jpeg("chelsea"), {"max_width": 4000, "max_height": 4000})
    assert image.size == (451, 300)


def test_large_jpeg_with_a_box_is_drafted_and_fits_exactly() -> None:
    options = parse_options({"max_width": 1200})
    prepared = prepare(
        read_source(images.large_jpeg(), options, max_input_pixels=MAX_PIXELS),
        options,
        model_size=MODEL_SIZE,
    )
    assert 1200 <= prepared.image.width < 4000
    result = finish(prepared, ellipse_mask(), options)
    assert (result.width, result.height) == (1200, 900)


def test_crop_disables_the_draft() -> None:
    options = parse_options({"max_width": 1200, "crop": "true"})
    prepared = prepare(
        read_source(images.large_jpeg(), options, max_input_pixels=MAX_PIXELS),
        options,
        model_size=MODEL_SIZE,
    )
    assert prepared.image.size == images.LARGE_SIZE


# astronaut is 512x512: mask coordinates (320 grid) scale by 1.6
SQUARE = "astronaut"
SCALE = 512 / MODEL_SIZE
BOX_320 = (100, 60, 200, 260)  # left, top, right, bottom: 100 x 200 on the model's grid
BOX_512 = tuple(round(v * SCALE) for v in BOX_320)  # (160, 96, 320, 416): 160 x 320


def close(actual: int, expected: int, tolerance: int = 3) -> bool:
    return abs(actual - expected) <= tolerance


def test_crop_reduces_to_the_masks_bounding_box() -> None:
    _, image = run(images.photo_png(SQUARE), {"crop": "true"}, rect_mask(BOX_320))
    left, top, right, bottom = BOX_512
    assert close(image.width, right - left), image.size
    assert close(image.height, bottom - top), image.size
    alpha = np.asarray(image.getchannel("A"))
    assert alpha[image.height // 2, image.width // 2] == 255


def test_crop_with_px_margin() -> None:
    _, image = run(images.photo_png(SQUARE), {"crop": "1", "crop_margin": "20"}, rect_mask(BOX_320))
    left, top, right, bottom = BOX_512
    assert close(image.width, right - left + 40), image.size
    assert close(image.height, bottom - top + 40), image.size


def test_crop_with_percent_margin_of_the_larger_side() -> None:
    _, image = run(
        images.photo_png(SQUARE), {"crop": "yes", "crop_margin": "10%"}, rect_mask(BOX_320)
    )
    left, top, right, bottom = BOX_512
    pad = round(0.10 * (bottom - top))  # 32 px of the 320 px larger side
    assert close(image.width, right - left + 2 * pad), image.size
    assert close(image.height, bottom - top + 2 * pad), image.size


def test_crop_margin_is_clipped_to_the_image() -> None:
    _, image = run(
        images.photo_png(SQUARE), {"crop": "on", "crop_margin": "500"}, rect_mask(BOX_320)
    )
    assert image.size == (512, 512)


def test_crop_then_fit() -> None:
    _, image = run(
        images.photo_png(SQUARE), {"crop": "true", "max_height": 160}, rect_mask(BOX_320)
    )
    assert image.height == 160
    assert close(image.width, 80, tolerance=2)


def test_crop_of_an_empty_mask_keeps_the_whole_image() -> None:
    _, image = run(
        images.photo_png(SQUARE),
        {"crop": "true"},
        np.zeros((MODEL_SIZE, MODEL_SIZE), dtype=np.uint8),
    )
    assert image.size == (512, 512)


def test_only_mask_gives_a_grey_image_of_the_same_size() -> None:
    _, image = run(images.photo_jpeg("coffee"), {"only_mask": "true"})
    assert image.mode == "L"
    assert image.size == (600, 400)
    expected = Image.fromarray(ellipse_mask(), mode="L").resize((600, 400), LANCZOS)
    assert np.array_equal(np.asarray(image), np.asarray(expected))


def test_only_mask_ignores_bg_color_and_applies_crop() -> None:
    _, image = run(
        images.photo_png(SQUARE),
        {"only_mask": "true", "bg_color": "red", "crop": "true"},
        rect_mask(BOX_320),
    )
    assert image.mode == "L"
    left, top, right, bottom = BOX_512
    assert close(image.width, right - left)
    assert close(image.height, bottom - top)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "AVIF"])
def test_only_mask_in_other_formats(fmt: str) -> None:
    _, image = run(images.photo_jpeg("coffee"), {"only_mask": "true", "format": fmt})
    assert image.size == (600, 400)
    grey = np.asarray(image.convert("L"), dtype=np.int16)
    assert grey[0, 0] <= 10
    assert grey[200, 300] >= 245


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "AVIF"])
def test_opaque_bg_color_gives_an_opaque_image(fmt: str) -> None:
    _, image = run(images.photo_jpeg("coffee"), {"bg_color": "#00ff00", "format": fmt})
    assert image.mode == "RGB" or np.asarray(image.getchannel("A")).min() == 255
    corner = image.convert("RGB").getpixel((2, 2))
    assert corner[1] >= 240
    assert corner[0] <= 15
    assert corner[2] <= 15


def test_translucent_bg_color_keeps_alpha() -> None:
    _, image = run(images.photo_jpeg("coffee"), {"bg_color": "#ff000080"})
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0)) == (255, 0, 0, 128)


def test_jpeg_has_a_white_background_where_the_mask_is_zero() -> None:
    # a black photo: only the background can make the corners white
    data = images.encode(Image.new("RGB", (400, 300), (0, 0, 0)), "PNG")
    _, image = run(data, {"format": "jpg"})
    assert image.format == "JPEG"
    assert image.mode == "RGB"
    assert all(channel >= 245 for channel in image.getpixel((3, 3)))
    assert all(channel <= 10 for channel in image.getpixel((200, 150)))


def test_jpeg_with_bg_color_uses_it() -> None:
    data = images.encode(Image.new("RGB", (400, 300), (0, 0, 0)), "PNG")
    _, image = run(data, {"format": "JPEG", "bg_color": "blue"})
    red, green, blue = image.getpixel((3, 3))
    assert blue >= 240
    assert red <= 15
    assert green <= 15


def test_input_transparency_multiplies_with_the_mask() -> None:
    data = images.palette_png_with_transparency()  # left half transparent, right half red
    full = np.full((MODEL_SIZE, MODEL_SIZE), 255, dtype=np.uint8)
    _, image = run(data, {}, full)
    alpha = np.asarray(image.getchannel("A"))
    width = images.PALETTE_SIZE[0]
    assert alpha[:, : width // 2].max() == 0
    assert alpha[:, width // 2 :].min() == 255


def test_palette_png_quality_below_95() -> None:
    _, image = run(images.photo_jpeg("coffee"), {"quality": "80"})
    assert image.mode == "P"
    assert "transparency" in image.info


def test_exif_rotated_input_comes_out_upright() -> None:
    result, image = run(images.exif_rotated_jpeg(), {})
    assert image.size == images.EXIF_UPRIGHT_SIZE
    assert (result.width, result.height) == images.EXIF_UPRIGHT_SIZE


def test_animated_gif_input_gives_a_still_output() -> None:
    _, image = run(images.animated_gif(), {"format": "WEBP"})
    assert getattr(image, "n_frames", 1) == 1


@pytest.mark.parametrize("preset", ["web", "thumbnail", "social"])
def test_presets_give_their_format_and_fit(preset: str) -> None:
    result, image = run(images.photo_jpeg("rocket"), {"preset": preset})
    options = parse_options({"preset": preset})
    assert image.format == options.format.value
    assert image.width <= (options.max_width or 10**6)
    assert image.height <= (options.max_height or 10**6)
    assert result.format is options.format


# --- Result ------------------------------------------------------------------------------


def result_of(size: int, original: int) -> Result:
    return Result(b"x" * size, OutputFormat.PNG, 10, 10, original, {})


@pytest.mark.parametrize(
    ("size", "original", "ratio"),
    [
        (25, 100, "75%"),
        (100, 100, "0%"),
        (150, 100, "-50%"),
        (1, 3, "67%"),
        (2, 3, "33%"),
        (300, 100, "-200%"),
        (0, 10, "100%"),
        (1005, 1000, "0%"),
    ],
)
def test_compression_ratio(size: int, original: int, ratio: str) -> None:
    result = result_of(size, original)
    assert result.output_bytes == size
    assert result.compression_ratio == ratio


def test_timings_have_every_stage() -> None:
    result, _ = run(images.photo_jpeg("chelsea"), {})
    assert set(result.timings_ms) >= {"decode", "preprocess", "compose", "encode"}
    assert all(value >= 0 for value in result.timings_ms.values())


def test_result_sizes_are_reported() -> None:
    data = images.photo_jpeg("chelsea")
    result, _ = run(data, {"format": "webp"})
    assert result.input_bytes == len(data)
    assert result.output_bytes == len(result.data)
    assert result.compression_ratio == f"{round((1 - result.output_bytes / len(data)) * 100)}%"


def test_cutout_clears_colour_only_where_fully_transparent() -> None:
    from PIL import Image

    from optimizer.compose import cutout

    photo = Image.new("RGB", (3, 1), (200, 100, 50))
    mask = Image.frombytes("L", (3, 1), bytes([0, 1, 255]))
    pixels = list(cutout(photo, mask).get_flattened_data())
    assert pixels == [(0, 0, 0, 0), (200, 100, 50, 1), (200, 100, 50, 255)]


def test_an_opaque_format_is_chosen_by_the_results_own_transparency() -> None:
    """remove.bg's format=auto: a PNG when any pixel is transparent, else the opaque format."""
    auto = dataclasses.replace(parse_options({}), opaque_format=OutputFormat.JPEG)
    data = images.photo_png("coffee")
    prepared = prepare(
        read_source(data, auto, max_input_pixels=MAX_PIXELS), auto, model_size=MODEL_SIZE
    )
    with_holes = finish(prepared, rect_mask((40, 40, 280, 280)), auto)
    assert with_holes.format is OutputFormat.PNG
    solid = finish(prepared, np.full((MODEL_SIZE, MODEL_SIZE), 255, np.uint8), auto)
    assert solid.format is OutputFormat.JPEG
    assert Image.open(io.BytesIO(solid.data)).format == "JPEG"
