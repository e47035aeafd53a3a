"""decode_image: every input we generate lands as an upright RGB/RGBA image, or as the
contract's error (400 invalid_image, 413 payload_too_large, 415 unsupported_media_type)."""

from __future__ import annotations

import resource
import time

import numpy as np
import pytest
from PIL import Image

from contract.errors import InvalidImage, PayloadTooLarge, UnsupportedMediaType
from optimizer.decode import decode_image, identify_format, jpeg_quality, to_rgb_or_rgba
from optimizer.geometry import fit_size
from tests import images

MAX_PIXELS = 50_000_000  # the contract's default MAX_IMAGE_PIXELS


def decode(data: bytes, **kw) -> Image.Image:
    return decode_image(data, max_input_pixels=kw.pop("max_input_pixels", MAX_PIXELS), **kw)


def near(actual: tuple, expected: tuple, tolerance: int = 12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


# --- formats and modes ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "AVIF", "GIF"])
@pytest.mark.parametrize(("name", "size"), [("astronaut", (512, 512)), ("coffee", (600, 400))])
def test_photos_in_every_served_format_decode_to_rgb(fmt: str, name: str, size: tuple) -> None:
    image = decode(images.photo(name, fmt))
    assert image.mode == "RGB"
    assert image.size == size


def test_decoded_pixels_match_the_source() -> None:
    image = decode(images.photo_png("chelsea"))
    assert np.array_equal(np.asarray(image), np.asarray(images.photo_image("chelsea")))


def test_rgba_png_stays_rgba_with_its_transparency() -> None:
    image = decode(images.rgba_png((120, 80)))
    assert image.mode == "RGBA"
    assert image.size == (120, 80)
    assert image.getpixel((0, 0))[3] == 0
    assert image.getpixel((60, 40)) == (*images.GREEN, 255)


def test_cmyk_jpeg_becomes_rgb() -> None:
    image = decode(images.cmyk_jpeg())
    assert image.mode == "RGB"
    assert image.size == (451, 300)
    source = np.asarray(images.photo_image("chelsea"), dtype=np.float64)
    # colours survive the CMYK round trip (not inverted, not washed out)
    assert np.abs(np.asarray(image, dtype=np.float64) - source).mean() < 12


def test_16_bit_grey_keeps_its_range() -> None:
    image = decode(images.grey16_png())
    assert image.mode == "RGB"
    assert image.size == images.GREY16_SIZE
    grey = np.asarray(image)[:, :, 0].astype(np.float64)
    assert abs(grey.mean() - 128) <= 10, "a 16-bit gradient must not be clipped to white"
    assert grey[:, 0].max() <= 2
    assert grey[:, -1].min() >= 253
    assert np.all(np.diff(grey[0]) >= 0), "the gradient stays monotonic"


def test_palette_transparency_becomes_alpha() -> None:
    image = decode(images.palette_png_with_transparency())
    assert image.mode == "RGBA"
    assert image.size == images.PALETTE_SIZE
    width, height = images.PALETTE_SIZE
    assert image.getpixel((0, 0))[3] == 0
    assert image.getpixel((width - 1, height - 1)) == (*images.RED, 255)
    alpha = np.asarray(image.getchannel("A"))
    assert (alpha == 0).sum() == (width // 2) * height


def test_animated_gif_gives_its_first_frame() -> None:
    image = decode(images.animated_gif())
    assert image.mode in ("RGB", "RGBA")
    assert image.size == images.GIF_SIZE
    assert getattr(image, "n_frames", 1) == 1 or not getattr(image, "is_animated", False)
    assert near(image.getpixel((10, 10))[:3], images.RED, tolerance=0)


def test_exif_orientation_is_applied() -> None:
    image = decode(images.exif_rotated_jpeg())
    assert image.mode == "RGB"
    assert image.size == images.EXIF_UPRIGHT_SIZE
    width, height = image.size
    assert near(image.getpixel((width // 2, height // 4)), images.RED)
    assert near(image.getpixel((width // 2, 3 * height // 4)), images.BLUE)


def test_exif_orientation_tag_is_gone_after_decoding() -> None:
    image = decode(images.exif_rotated_jpeg())
    assert image.getexif().get(images.ORIENTATION_TAG, 1) == 1


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [images.truncated_jpeg, images.truncated_png])
def test_truncated_image_is_invalid(make) -> None:
    with pytest.raises(InvalidImage) as caught:
        decode(make())
    assert caught.value.code == "invalid_image"
    assert caught.value.code == "invalid_image"


def test_header_only_png_is_invalid() -> None:
    # 100x100 claimed, 64 bytes of pixel data: decodable header, undecodable image
    with pytest.raises(InvalidImage):
        decode(images.oversized_header_png(100, 100))


def test_empty_file_is_invalid() -> None:
    with pytest.raises(InvalidImage) as caught:
        decode(images.empty_file())
    assert caught.value.code == "invalid_image"


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a"])
def test_bare_signature_is_invalid_not_unsupported(data: bytes) -> None:
    with pytest.raises(InvalidImage):
        decode(data)


@pytest.mark.parametrize("make", [images.text_file, images.tiff_image])
def test_text_and_tiff_are_unsupported(make) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        decode(make())
    assert caught.value.code == "unsupported_media_type"
    assert caught.value.code == "unsupported_media_type"


@pytest.mark.parametrize(
    "size",
    [(9000, 9000), (60000, 1000), (30000, 30000), (65535, 65535)],
    ids=["81MP", "60MP-strip", "900MP", "4GP"],
)
def test_oversized_header_is_payload_too_large_and_fast(size: tuple[int, int]) -> None:
    data = images.oversized_header_png(*size)
    assert len(data) < 200
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.perf_counter()
    with pytest.raises(PayloadTooLarge) as caught:
        decode(data)
    assert time.perf_counter() - started < 1.0
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mib < 64, f"peak memory grew by {grown_mib:.0f} MiB"
    assert caught.value.code == "payload_too_large"


def test_pixel_limit_is_exclusive_of_the_exact_count() -> None:
    data = images.photo_png("astronaut")  # 512 x 512
    assert decode(data, max_input_pixels=512 * 512).size == (512, 512)
    with pytest.raises(PayloadTooLarge):
        decode(data, max_input_pixels=512 * 512 - 1)


# --- reduced JPEG decode (draft) -----------------------------------------------------------


def test_large_jpeg_without_draft_is_full_size() -> None:
    assert decode(images.large_jpeg()).size == images.LARGE_SIZE


@pytest.mark.parametrize("box", [(1200, None), (None, 900), (1200, 900)])
def test_draft_decodes_smaller_but_still_covers_the_box(box: tuple) -> None:
    image = decode(images.large_jpeg(), draft_box=box)
    width, height = image.size
    assert 1200 <= width < 4000
    assert 900 <= height < 3000
    assert abs(width / height - 4 / 3) < 0.01


def test_draft_box_larger_than_image_decodes_full_size() -> None:
    assert decode(images.large_jpeg(), draft_box=(4000, 3000)).size == images.LARGE_SIZE


def test_draft_ignores_non_jpeg() -> None:
    data = images.photo_png("coffee")
    assert decode(data, draft_box=(150, None)).size == (600, 400)


@pytest.mark.parametrize("box", [(1200, None), (1000, None), (None, 2000), (700, 700)])
def test_draft_with_exif_rotation_covers_the_box_upright(box: tuple) -> None:
    upright_full = images.LARGE_SIZE[::-1]  # orientation 6: stored 4000x3000 is 3000x4000
    needed_width, needed_height = fit_size(upright_full, box)
    image = decode(images.large_jpeg(orientation=6), draft_box=box)
    width, height = image.size
    assert height > width, "a stored landscape with orientation 6 is upright portrait"
    assert width >= needed_width
    assert height >= needed_height
    assert image.size != upright_full, "the decode should still be reduced"


# --- identify_format and to_rgb_or_rgba ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (images.photo_jpeg(), "JPEG"),
        (images.photo_png(), "PNG"),
        (images.photo("astronaut", "WEBP"), "WEBP"),
        (images.animated_gif(), "GIF"),
        (images.photo("astronaut", "BMP"), "BMP"),
        (images.photo("astronaut", "AVIF"), "AVIF"),
    ],
)
def test_identify_format(data: bytes, expected: str) -> None:
    assert identify_format(data) == expected


@pytest.mark.parametrize("data", [images.text_file(), images.tiff_image()])
def test_identify_format_refuses_what_we_do_not_decode(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType):
        identify_format(data)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("RGB", "RGB"),
        ("RGBA", "RGBA"),
        ("L", "RGB"),
        ("1", "RGB"),
        ("LA", "RGBA"),
        ("CMYK", "RGB"),
        ("I", "RGB"),
        ("F", "RGB"),
        ("YCbCr", "RGB"),
        ("P", "RGB"),
    ],
)
def test_to_rgb_or_rgba_modes(mode: str, expected: str) -> None:
    assert to_rgb_or_rgba(Image.new(mode, (8, 8))).mode == expected


def test_to_rgb_or_rgba_keeps_an_rgb_image_as_is() -> None:
    image = Image.new("RGB", (4, 4), (1, 2, 3))
    assert to_rgb_or_rgba(image) is image


def test_float_grey_is_scaled_from_unit_range() -> None:
    image = Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32), mode="F")
    assert to_rgb_or_rgba(image).getpixel((0, 0)) == (127, 127, 127)


@pytest.mark.parametrize("quality", [30, 50, 75, 90, 91, 95, 100])
def test_jpeg_quality_is_read_from_the_luminance_table(quality: int) -> None:
    data = images.photo("chelsea", "JPEG", quality=quality)
    assert jpeg_quality(data) == pytest.approx(quality, abs=1)


@pytest.mark.parametrize(
    "data", [b"", b"\xff\xd8\xff", images.photo("chelsea", "PNG"), images.photo("chelsea", "WEBP")]
)
def test_jpeg_quality_is_none_for_anything_but_a_readable_jpeg(data: bytes) -> None:
    assert jpeg_quality(data) is None
