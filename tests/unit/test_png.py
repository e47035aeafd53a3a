"""The fast PNG writer: lossless, readable by Pillow, at most 10 % larger than Pillow's own
encoder on real cut-outs of JPEGs up to quality 90, used for those only, and the cut-out itself
pixel for pixel what it was before."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops

from optimizer import OutputFormat, parse_options, prepare, read_source
from optimizer.compose import cutout
from optimizer.encode import PNG_COMPRESS_LEVEL, PNG_STRATEGY, encode
from optimizer.pipeline import finish, shape_layers
from optimizer.png import FINEST_JPEG_QUALITY, encode_png, fast_png_suits
from segmentation import SegmentationSession, get_spec
from tests import images

SIZE_GROWTH_ALLOWED = 1.10


def pillow_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL, compress_type=PNG_STRATEGY)
    return buffer.getvalue()


def previous_cutout(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The cut-out as it was made before (Pillow's composite with a visibility mask)."""
    alpha = ImageChops.multiply(mask, image.getchannel("A")) if image.mode == "RGBA" else mask
    result = image.convert("RGBA")
    result.putalpha(alpha)
    visible = alpha.point([0] + [255] * 255)
    return Image.composite(result, Image.new("RGBA", result.size), visible)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
@pytest.mark.parametrize("size", [(1, 1), (3, 7), (640, 427)])
def test_lossless_for_every_mode_and_size(mode: str, size: tuple[int, int]) -> None:
    channels = len(mode)
    pixels = np.random.default_rng(7).integers(0, 256, (size[1], size[0], channels), np.uint8)
    image = Image.fromarray(pixels.squeeze(axis=2) if channels == 1 else pixels)
    data = encode_png(image)
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "PNG" and decoded.mode == mode
        assert np.array_equal(np.asarray(decoded), np.asarray(image))
        assert not decoded.info.get("exif") and not decoded.info.get("icc_profile")


def test_chunks_carry_valid_checksums() -> None:
    data = encode_png(Image.new("RGBA", (50, 20), (1, 2, 3, 4)))
    position = 8
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind_and_body = data[position + 4 : position + 8 + length]
        crc = int.from_bytes(data[position + 8 + length : position + 12 + length], "big")
        assert zlib.crc32(kind_and_body) == crc, kind_and_body[:4]
        position += 12 + length
    assert position == len(data)


def test_mostly_transparent_cutouts_keep_pillows_encoder() -> None:
    small_subject = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    small_subject.paste((200, 10, 10, 255), (40, 40, 60, 60))
    assert not fast_png_suits(small_subject, 80)
    large_subject = Image.new("RGBA", (100, 100), (200, 10, 10, 255))
    assert fast_png_suits(large_subject, 80)
    assert not fast_png_suits(Image.new("P", (10, 10)), 80)


def test_only_cutouts_of_coarse_enough_jpegs_take_the_fast_writer() -> None:
    opaque = Image.new("RGB", (10, 10), (200, 10, 10))
    assert fast_png_suits(opaque, FINEST_JPEG_QUALITY)
    assert fast_png_suits(opaque, FINEST_JPEG_QUALITY + 0.4)  # the estimate is not exact
    assert not fast_png_suits(opaque, FINEST_JPEG_QUALITY + 1)
    assert not fast_png_suits(opaque, None)  # not a JPEG


@pytest.fixture(scope="module")
def session(stored_model_path: Path) -> SegmentationSession:
    return SegmentationSession(stored_model_path, get_spec("u2netp"), threads=2)


@pytest.mark.parametrize("photo", ["astronaut", "chelsea", "coffee", "rocket"])
def test_real_cutouts_look_the_same_and_grow_at_most_10_percent(
    session: SegmentationSession, photo: str
) -> None:
    options = parse_options({})
    # The finest JPEGs that take the fast writer: the largest growth over Pillow's size.
    source = images.photo(photo, "JPEG", quality=FINEST_JPEG_QUALITY)
    prepared = prepare(
        read_source(source, options, max_input_pixels=10**8), options, model_size=320
    )
    assert prepared.model_input is not None
    mask = session.predict(prepared.model_input[np.newaxis])[0]
    image, alpha = shape_layers(prepared, mask, options)
    made = cutout(image, alpha)
    before = previous_cutout(image, alpha)
    assert np.array_equal(np.asarray(made), np.asarray(before))  # the same pixels
    quality = prepared.source_jpeg_quality
    assert quality == pytest.approx(FINEST_JPEG_QUALITY, abs=0.5)
    data = encode(made, OutputFormat.PNG, 100, lossless_png=True, source_jpeg_quality=quality)
    assert (data == encode_png(made)) == fast_png_suits(made, quality)  # unless mostly clear
    with Image.open(io.BytesIO(data)) as decoded:
        assert np.array_equal(np.asarray(decoded), np.asarray(before))
    assert len(data) <= SIZE_GROWTH_ALLOWED * len(pillow_png(before)), photo


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("WEBP", {"lossless": True}),
        ("JPEG", {"quality": 95}),
    ],
)
def test_cutouts_of_fine_sources_keep_pillows_encoder(
    session: SegmentationSession, fmt: str, options: dict
) -> None:
    source = images.photo("coffee", fmt, **options)
    prepared = prepare(
        read_source(source, parse_options({}), max_input_pixels=10**8),
        parse_options({}),
        model_size=320,
    )
    assert prepared.model_input is not None
    mask = session.predict(prepared.model_input[np.newaxis])[0]
    image, alpha = shape_layers(prepared, mask, parse_options({}))
    made = cutout(image, alpha)
    assert fast_png_suits(made, 90)  # as a cut-out of a q90 JPEG, it would take the fast writer
    assert finish(prepared, mask, parse_options({})).data == pillow_png(made)
