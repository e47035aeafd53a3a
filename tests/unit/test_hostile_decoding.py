"""Bounded work per image: files that cost a decoder far more than their size are refused by
the structure walk before any decoder runs; what remains decodes, and stops when its caller
no longer wants it. Never a process-wide warnings filter, never an exception a client can
turn into a 500."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from contract.errors import InvalidImage, InvalidParameter, PayloadTooLarge
from optimizer import parse_options, read_source
from optimizer.decode import WorkCancelled, decode_image, open_image
from optimizer.encode import MAX_SIDE, require_encodable
from optimizer.options import OutputFormat
from optimizer.structure import MAX_HEADER_BYTES, MAX_JPEG_SCANS, check_structure
from tests import hostile, images

MAX_PIXELS = 50_000_000


def decode(data: bytes, **kw: object) -> Image.Image:
    return decode_image(data, max_input_pixels=MAX_PIXELS, **kw)  # type: ignore[arg-type]


# --- the structure walk ---------------------------------------------------------------------


def test_a_scan_bomb_is_refused_before_decoding() -> None:
    """7,500 repeats of a 14-byte scan: 121 KB that cost 15-19 s of CPU to decode."""
    with pytest.raises(InvalidImage, match="scans"):
        decode(hostile.scan_bomb_jpeg())


def test_progressive_jpegs_up_to_the_scan_limit_decode() -> None:
    assert decode(hostile.progressive_jpeg_with_scans(MAX_JPEG_SCANS)).size == (64, 64)
    with pytest.raises(InvalidImage, match="scans"):
        decode(hostile.progressive_jpeg_with_scans(MAX_JPEG_SCANS + 1))


@pytest.mark.parametrize("flood", sorted(hostile.HEADER_FLOODS))
def test_header_floods_are_refused(flood: str) -> None:
    data = hostile.HEADER_FLOODS[flood]()
    with pytest.raises(InvalidImage):
        decode(data)


@pytest.mark.parametrize(
    "make",
    [
        images.photo_jpeg,
        images.large_jpeg,
        images.cmyk_jpeg,
        images.exif_rotated_jpeg,
        images.photo_png,
        images.grey16_png,
        images.palette_png_with_transparency,
        images.animated_gif,
        lambda: images.photo("coffee", "JPEG", progressive=True, quality=95),
        lambda: images.encode(images.photo_image().convert("CMYK"), "JPEG", progressive=True),
    ],
)
def test_ordinary_images_pass_the_walk(make) -> None:  # type: ignore[no-untyped-def]
    check_structure(make())


def test_stray_bytes_before_the_first_scan_count_as_header_bytes() -> None:
    """Pillow skips stray bytes one at a time in Python: a few are tolerated, megabytes not."""
    base = images.photo_jpeg()
    at = base.find(b"\xff\xdb")
    assert decode(base[:at] + b"\0" * 1000 + base[at:]).size == (512, 512)
    with pytest.raises(InvalidImage, match="before its first image data"):
        check_structure(base[:at] + b"\0" * (MAX_HEADER_BYTES + 1) + base[at:])


# --- decoding without a warnings filter ------------------------------------------------------


def test_pillows_bomb_warning_is_a_413_whatever_the_filters_say() -> None:
    """A worker thread's `catch_warnings` once leaked an `error` filter into the process, and
    Pillow's bomb warning became an exception nothing caught: a 500 for every later 9500²
    header. The header check must not depend on what the filters are."""
    header = images.oversized_header_png(9500, 9500)  # over Pillow's own 89.5 MP warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(PayloadTooLarge):
            decode(header)
    with pytest.raises(PayloadTooLarge):
        decode(header)


def test_decoding_in_threads_leaves_the_warnings_filters_alone() -> None:
    before = list(warnings.filters)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: decode(images.photo_png("chelsea")), range(16)))
    assert warnings.filters == before


# --- a JPEG whose Exif block cannot be read --------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"max_width": "200"}, {"crop": "true"}])
def test_an_unreadable_exif_block_does_not_stop_the_decode(options: dict) -> None:
    data = hostile.jpeg_with_unreadable_exif()
    source = read_source(data, parse_options(options), max_input_pixels=MAX_PIXELS)
    assert source.image.size[0] <= 451
    assert decode(data).size == (451, 300)


# --- work that is no longer wanted -----------------------------------------------------------


def test_a_decode_stops_at_its_next_read_once_cancelled() -> None:
    noise = np.random.default_rng(7).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    data = images.encode(Image.fromarray(noise), "PNG", compress_level=0)  # ~140 reads
    asked, allowed = 0, 10**9

    def cancelled() -> bool:
        nonlocal asked
        asked += 1
        return asked > allowed

    image = open_image(data, max_input_pixels=MAX_PIXELS, cancelled=cancelled)
    allowed = asked + 2  # two more blocks, then the request is gone
    with pytest.raises(WorkCancelled):
        image.load()
    assert asked == allowed + 1  # the decoder stopped at once, not after its ~140 blocks


# --- encoders' own limits, refused before any work ------------------------------------------


@pytest.mark.parametrize(
    ("size", "fmt"),
    [((17000, 800), OutputFormat.WEBP), ((1, 70000), OutputFormat.JPEG)],
)
def test_outputs_a_format_cannot_hold_are_refused_from_the_header(
    size: tuple[int, int], fmt: OutputFormat
) -> None:
    data = images.encode(Image.new("L", size, 200), "PNG")
    options = parse_options({"format": fmt.value})
    with pytest.raises(InvalidParameter, match=fmt.value):
        read_source(data, options, max_input_pixels=MAX_PIXELS)  # the header alone


def test_a_box_that_fits_the_format_is_accepted() -> None:
    data = images.encode(Image.new("L", (17000, 800), 200), "PNG")
    options = parse_options({"format": "WEBP", "max_width": "4000"})
    assert read_source(data, options, max_input_pixels=MAX_PIXELS).image.size == (17000, 800)


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_require_encodable_at_the_limit(fmt: OutputFormat) -> None:
    require_encodable((min(MAX_SIDE[fmt], 10**6), 1), fmt)
    if MAX_SIDE[fmt] < 10**6:
        with pytest.raises(InvalidParameter):
            require_encodable((MAX_SIDE[fmt] + 1, 1), fmt)
