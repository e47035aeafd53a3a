"""Writing lossless PNGs fast: one `Up` row filter computed with numpy, deflated by ISA-L.

Pillow's PNG encoder picks a filter for every row by trying them all and deflates with zlib;
a fixed `Up` filter and ISA-L's deflate take a fraction of that time. On cut-outs of JPEGs up
to quality 90 the files stay within 10 % of Pillow's size (JPEG's own noise leaves Pillow's
Paeth filter little to win); from finer JPEGs and from lossless sources, smooth where JPEGs are
noisy, they grow more, so those keep Pillow's encoder. Where most of the picture is
transparent, Pillow's per-row choice pays too, and it is cheap there. The figures:
docs/performance.md, "Encoder settings".
"""

from __future__ import annotations

import struct

import numpy as np
from isal import isal_zlib
from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {"L": 0, "RGB": 2, "RGBA": 6}
UP_FILTER = 2
DEFLATE_LEVEL = 2  # ISA-L's levels are 0-3; 2 gave the smallest files on cut-outs
# Above this share of fully transparent pixels, Pillow's adaptive filters win on size.
MOSTLY_TRANSPARENT = 0.6
# The finest source JPEG (libjpeg quality) whose cut-outs stay within 10 % of Pillow's size.
FINEST_JPEG_QUALITY = 90


def fast_png_suits(image: Image.Image, source_jpeg_quality: float | None) -> bool:
    """Whether the fast writer stays within 10 % of Pillow's size for this cut-out of a source
    JPEG of that quality (None: the source was not a JPEG)."""
    if source_jpeg_quality is None or round(source_jpeg_quality) > FINEST_JPEG_QUALITY:
        return False
    if image.mode not in COLOUR_TYPES:
        return False
    if image.mode != "RGBA":
        return True
    alpha = np.asarray(image.getchannel("A"))
    return int(np.count_nonzero(alpha == 0)) < MOSTLY_TRANSPARENT * alpha.size


def encode_png(image: Image.Image) -> bytes:
    """An 8-bit greyscale, RGB or RGBA PNG without metadata."""
    pixels = np.asarray(image)
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = UP_FILTER
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPES[image.mode], 0, 0, 0)
    return b"".join(
        (
            SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", isal_zlib.compress(filtered, DEFLATE_LEVEL)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = isal_zlib.crc32(data, isal_zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
