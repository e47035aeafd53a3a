"""encode: lossless or palette PNG, progressive JPEG without alpha, WEBP/AVIF with alpha,
never an orientation tag, never an animation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from optimizer.decode import decode_image
from optimizer.encode import encode
from optimizer.options import OutputFormat
from tests import images

ORIENTATION_TAG = 0x0112
ALL_FORMATS = list(OutputFormat)


def reopen(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def cutout(size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A photo with an elliptical alpha: opaque inside, transparent at the corners."""
    photo = images.photo_image("astronaut").resize(size)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    inside = ((xx - width / 2) / (width / 3)) ** 2 + ((yy - height / 2) / (height / 3)) ** 2 <= 1
    photo.putalpha(Image.fromarray(np.where(inside, 255, 0).astype(np.uint8), mode="L"))
    return photo


def grey_mask(size: tuple[int, int] = (160, 120)) -> Image.Image:
    return cutout(size).getchannel("A")


# --- PNG -----------------------------------------------------------------------------------


def test_lossless_png_round_trips_exactly() -> None:
    image = cutout()
    decoded = reopen(encode(image, OutputFormat.PNG, 100, lossless_png=True))
    assert decoded.format == "PNG"
    assert decoded.mode == "RGBA"
    assert np.array_equal(np.asarray(decoded), np.asarray(image))


def test_lossless_png_of_rgb_round_trips_exactly() -> None:
    image = images.photo_image("chelsea")
    decoded = reopen(encode(image, OutputFormat.PNG, 95, lossless_png=True))
    assert decoded.mode == "RGB"
    assert np.array_equal(np.asarray(decoded), np.asarray(image))


def test_palette_png_below_95_has_transparency() -> None:
    image = cutout()
    decoded = reopen(encode(image, OutputFormat.PNG, 80, lossless_png=False))
    assert decoded.mode == "P"
    assert "transparency" in decoded.info  # a tRNS chunk
    assert len(decoded.getcolors(maxcolors=256 * 256) or []) <= 256
    rgba = decoded.convert("RGBA")
    assert rgba.getpixel((0, 0))[3] == 0
    assert rgba.getpixel((80, 60))[3] == 255


def test_palette_png_is_smaller_than_lossless() -> None:
    image = cutout((400, 300))
    lossless = encode(image, OutputFormat.PNG, 100, lossless_png=True)
    palette = encode(image, OutputFormat.PNG, 80, lossless_png=False)
    assert len(palette) < len(lossless)


# --- JPEG ----------------------------------------------------------------------------------


def test_jpeg_is_progressive_without_alpha() -> None:
    decoded = reopen(encode(cutout(), OutputFormat.JPEG, 80, lossless_png=False))
    assert decoded.format == "JPEG"
    assert decoded.info.get("progressive") or decoded.info.get("progression")
    assert decoded.mode == "RGB"


def test_jpeg_flattens_transparency_onto_white() -> None:
    decoded = reopen(encode(cutout(), OutputFormat.JPEG, 90, lossless_png=False))
    corner = decoded.getpixel((1, 1))
    assert all(channel >= 245 for channel in corner), corner


def test_jpeg_uses_4_2_0_subsampling() -> None:
    from PIL import JpegImagePlugin

    decoded = reopen(encode(cutout(), OutputFormat.JPEG, 90, lossless_png=False))
    assert JpegImagePlugin.get_sampling(decoded) == 2  # 4:2:0


def test_jpeg_quality_changes_the_size() -> None:
    image = images.photo_image("coffee")
    low = encode(image, OutputFormat.JPEG, 30, lossless_png=False)
    high = encode(image, OutputFormat.JPEG, 95, lossless_png=False)
    assert len(low) < len(high)


# --- WEBP and AVIF -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [OutputFormat.WEBP, OutputFormat.AVIF])
def test_webp_and_avif_keep_alpha(fmt: OutputFormat) -> None:
    decoded = reopen(encode(cutout(), fmt, 80, lossless_png=False))
    assert decoded.format == fmt.value
    assert decoded.mode == "RGBA"
    assert decoded.getpixel((0, 0))[3] <= 5
    assert decoded.getpixel((80, 60))[3] >= 250


@pytest.mark.parametrize("fmt", [OutputFormat.WEBP, OutputFormat.AVIF])
def test_webp_and_avif_of_rgb_are_readable(fmt: OutputFormat) -> None:
    decoded = reopen(encode(images.photo_image("rocket"), fmt, 60, lossless_png=False))
    assert decoded.size == (640, 427)


# --- across formats ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize("lossless", [True, False])
def test_a_grey_mask_encodes_in_every_format(fmt: OutputFormat, lossless: bool) -> None:
    mask = grey_mask()
    decoded = reopen(encode(mask, fmt, 80, lossless_png=lossless))
    assert decoded.format == fmt.value
    assert decoded.size == mask.size
    grey = np.asarray(decoded.convert("L"), dtype=np.int16)
    assert grey[0, 0] <= 10
    assert grey[60, 80] >= 245


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_encoded_size_matches_the_image(fmt: OutputFormat) -> None:
    assert reopen(encode(cutout((123, 77)), fmt, 80, lossless_png=False)).size == (123, 77)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_no_output_has_an_orientation_tag(fmt: OutputFormat) -> None:
    upright = decode_image(images.exif_rotated_jpeg(), max_input_pixels=10**8)
    decoded = reopen(encode(upright, fmt, 80, lossless_png=fmt is OutputFormat.PNG))
    assert decoded.size == images.EXIF_UPRIGHT_SIZE
    assert ORIENTATION_TAG not in decoded.getexif()


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_an_orientation_in_the_source_info_is_not_copied(fmt: OutputFormat) -> None:
    image = cutout()
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    image.info["exif"] = exif.tobytes()
    decoded = reopen(encode(image, fmt, 80, lossless_png=True))
    assert decoded.getexif().get(ORIENTATION_TAG, 1) == 1


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_output_is_never_animated(fmt: OutputFormat) -> None:
    first_frame = decode_image(images.animated_gif(), max_input_pixels=10**8)
    decoded = Image.open(io.BytesIO(encode(first_frame, fmt, 80, lossless_png=False)))
    assert getattr(decoded, "n_frames", 1) == 1
    assert not getattr(decoded, "is_animated", False)
