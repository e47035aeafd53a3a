"""The fast PNG writer: lossless, readable by Pillow, at most 10 % larger than Pillow's own
encoder on real cut-outs of JPEG photos, used for those only, and the cut-out itself pixel for
pixel what it was before."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops

from optimizer import OutputFormat, parse_options, prepare
from optimizer.compose import cutout
from optimizer.encode import PNG_COMPRESS_LEVEL, PNG_STRATEGY, encode
from optimizer.pipeline import finish, shape_layers
from optimizer.png import encode_png, fast_png_suits, is_jpeg
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
        length = int.from_bytes(data[position:position + 4], "big")
        kind_and_body = data[position + 4:position + 8 + length]
        crc = int.from_bytes(data[position + 8 + length:position + 12 + length], "big")
        assert zlib.crc32(kind_and_body) == crc, kind_and_body[:4]
        position += 12 + length
    assert position == len(data)


def test_mostly_transparent_cutouts_keep_pillows_encoder() -> None:
    small_subject = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    small_subject.paste((200, 10, 10, 255), (40, 40, 60, 60))
    assert not fast_png_suits(small_subject)
    large_subject = Image.new("RGBA", (100, 100), (200, 10, 10, 255))
    assert fast_png_suits(large_subject)
    assert not fast_png_suits(Image.new("P", (10, 10)))


@pytest.fixture(scope="module")
def session(stored_model_path: Path) -> SegmentationSession:
    return SegmentationSession(stored_model_path, get_spec("u2netp"), threads=2)


@pytest.mark.parametrize("photo", ["astronaut", "chelsea", "coffee", "rocket"])
def test_real_cutouts_look_the_same_and_grow_at_most_10_percent(
        session: SegmentationSession, photo: str) -> None:
    options = parse_options({})
    prepared = prepare(images.photo(photo, "JPEG"), options, max_input_pixels=10**8,
                       model_size=320)
    assert prepared.model_input is not None
    mask = session.predict(prepared.model_input[np.newaxis])[0]
    image, alpha = shape_layers(prepared, mask, options)
    made = cutout(image, alpha)
    before = previous_cutout(image, alpha)
    assert np.array_equal(np.asarray(made), np.asarray(before))  # the same pixels
    data = encode(made, OutputFormat.PNG, 100, lossless_png=True, from_jpeg=True)
    assert (data == encode_png(made)) == fast_png_suits(made)  # unless mostly transparent
    with Image.open(io.BytesIO(data)) as decoded:
        assert np.array_equal(np.asarray(decoded), np.asarray(before))
    assert len(data) <= SIZE_GROWTH_ALLOWED * len(pillow_png(before)), photo


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_cutouts_of_lossless_sources_keep_pillows_encoder(
        session: SegmentationSession, fmt: str) -> None:
    options = parse_options({})
    source = images.photo("coffee", fmt, lossless=True) if fmt == "WEBP" else \
        images.photo("coffee", fmt)
    prepared = prepare(source, options, max_input_pixels=10**8, model_size=320)
    assert not prepared.from_jpeg
    assert prepared.model_input is not None
    mask = session.predict(prepared.model_input[np.newaxis])[0]
    image, alpha = shape_layers(prepared, mask, options)
    made = cutout(image, alpha)
    assert fast_png_suits(made)  # as a JPEG's cut-out, it would take the fast writer
    assert finish(prepared, mask, options).data == pillow_png(made)


def test_only_jpeg_data_counts_as_a_jpeg_source() -> None:
    options = parse_options({})
    jpeg = prepare(images.photo("chelsea", "JPEG"), options, max_input_pixels=10**8,
                   model_size=None)
    png = prepare(images.photo("chelsea", "PNG"), options, max_input_pixels=10**8,
                  model_size=None)
    assert jpeg.from_jpeg and not png.from_jpeg
    assert is_jpeg(b"\xff\xd8\xff\xe0") and not is_jpeg(b"\x89PNG\r\n") and not is_jpeg(b"")
