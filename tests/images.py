"""Test inputs generated in code: no binary fixture is committed.

Every function returns the encoded file as `bytes` (or a Pillow image where the name says so)
and is cached, so unit and end-to-end tests can call them freely. Import them as
`from tests.images import ...` (run pytest as `python -m pytest` from the project root).
"""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache
from typing import Any

import numpy as np
from PIL import Image

from tests.serving import fresh as fresh  # the same image under new bytes

ORIENTATION_TAG = 0x0112
PHOTO_NAMES = ("astronaut", "chelsea", "coffee", "rocket")
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
GIF_FRAME_COLOURS = (RED, GREEN, BLUE)
PALETTE_TRANSPARENT_INDEX = 0


def encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    """Encode a Pillow image to bytes in `fmt` (any format name Pillow writes)."""
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kw)
    return buffer.getvalue()


# --- real photos --------------------------------------------------------------------------


@cache
def _photo_array(name: str) -> np.ndarray:
    if name not in PHOTO_NAMES:
        raise ValueError(f"unknown photo {name!r}; choose from {PHOTO_NAMES}")
    import skimage.data  # imported lazily: only the photo helpers need it

    return getattr(skimage.data, name)()


def photo_image(name: str = "astronaut") -> Image.Image:
    """One of skimage's bundled photos as an RGB image (a fresh copy each call).

    Sizes: astronaut 512x512, chelsea 451x300, coffee 600x400, rocket 640x427.
    """
    return Image.fromarray(_photo_array(name)).convert("RGB")


@cache
def photo(name: str = "astronaut", fmt: str = "JPEG", **kw: Any) -> bytes:
    """A real photo encoded as `fmt` (JPEG, PNG, WEBP, AVIF, GIF, BMP, TIFF...)."""
    return encode(photo_image(name), fmt, **kw)


def photo_jpeg(name: str = "astronaut", quality: int = 90) -> bytes:
    return photo(name, "JPEG", quality=quality)


def photo_png(name: str = "astronaut") -> bytes:
    return photo(name, "PNG")


# --- broken, hostile or refused inputs ----------------------------------------------------


@cache
def truncated_jpeg() -> bytes:
    """A JPEG cut in the middle of its scan data: the header parses, the pixels do not."""
    data = photo_jpeg("astronaut")
    return data[: len(data) // 2]


@cache
def truncated_png() -> bytes:
    """A PNG cut in the middle of its IDAT chunk."""
    data = photo_png("chelsea")
    return data[: len(data) // 2]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


@cache
def oversized_header_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid-looking RGB PNG whose IHDR claims `width` x `height`, with a tiny IDAT.

    Built from chunks (valid CRCs), so it costs a few dozen bytes whatever the claimed size.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


@cache
def tiff_image() -> bytes:
    """A perfectly good TIFF: a format the service does not decode (415)."""
    return photo("chelsea", "TIFF")


def text_file() -> bytes:
    """Not an image at all (415)."""
    return b"This is a plain text file, not an image.\nIt has two lines.\n"


def empty_file() -> bytes:
    return b""


# --- unusual but valid images --------------------------------------------------------------


@cache
def cmyk_jpeg() -> bytes:
    """A CMYK JPEG (as print workflows produce), 451x300."""
    return encode(photo_image("chelsea").convert("CMYK"), "JPEG", quality=90)


GREY16_SIZE = (256, 64)


@cache
def grey16_png() -> bytes:
    """A 16-bit greyscale PNG (mode I;16), a horizontal gradient from 0 to 65535, 256x64."""
    width, height = GREY16_SIZE
    row = np.linspace(0, 65535, width).round().astype(np.uint16)
    image = Image.fromarray(np.tile(row, (height, 1)))
    assert image.mode == "I;16"
    return encode(image, "PNG")


PALETTE_SIZE = (64, 48)


@cache
def palette_png_with_transparency() -> bytes:
    """A palette PNG (mode P, 64x48) whose index 0 is transparent (tRNS).

    The left half uses index 0 (transparent), the right half index 1 (opaque red).
    """
    width, height = PALETTE_SIZE
    image = Image.new("P", PALETTE_SIZE, 0)
    image.putpalette([0, 0, 0, *RED] + [0, 0, 0] * 254)
    image.paste(1, (width // 2, 0, width, height))
    return encode(image, "PNG", transparency=PALETTE_TRANSPARENT_INDEX)


EXIF_STORED_SIZE = (300, 200)  # landscape as stored
EXIF_UPRIGHT_SIZE = (200, 300)  # portrait once orientation 6 is applied


def _with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return exif.tobytes()


@cache
def exif_rotated_jpeg() -> bytes:
    """A JPEG stored landscape 300x200 with EXIF orientation 6 (rotate 90 degrees clockwise).

    Stored: left half red, right half blue. Upright (200x300): top half red, bottom half blue.
    """
    width, height = EXIF_STORED_SIZE
    image = Image.new("RGB", EXIF_STORED_SIZE, BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return encode(image, "JPEG", quality=95, exif=_with_orientation(6))


GIF_SIZE = (64, 64)


@cache
def animated_gif() -> bytes:
    """A 3-frame animated GIF, 64x64: red, then green, then blue."""
    frames = [Image.new("RGB", GIF_SIZE, colour) for colour in GIF_FRAME_COLOURS]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


@cache
def rgba_png(size: tuple[int, int] = (120, 80)) -> bytes:
    """An RGBA PNG: transparent everywhere except an opaque green rectangle in the middle."""
    width, height = size
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    image.paste((*GREEN, 255), (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    return encode(image, "PNG")


LARGE_SIZE = (4000, 3000)


@cache
def large_jpeg(orientation: int | None = None) -> bytes:
    """A 4000x3000 JPEG (an upscaled photo, a few hundred KB) for reduced-decode tests.

    With `orientation`, an EXIF orientation tag is written (the pixels stay 4000x3000 as stored).
    """
    image = photo_image("coffee").resize(LARGE_SIZE, Image.Resampling.BILINEAR)
    extra = {"exif": _with_orientation(orientation)} if orientation else {}
    return encode(image, "JPEG", quality=85, **extra)
