"""Encoding the result. Effort settings were chosen by measurement (bench/encoders.py):
see docs/performance.md, "Encoder settings", for the figures behind each constant.
"""

from __future__ import annotations

import io
import zlib

import isal
import PIL
from PIL import Image

from contract.errors import InvalidParameter
from optimizer.compose import on_background
from optimizer.options import OutputFormat
from optimizer.png import (
    DEFLATE_LEVEL,
    FINEST_JPEG_QUALITY,
    MOSTLY_TRANSPARENT,
    encode_png,
    fast_png_suits,
)

WHITE = (255, 255, 255, 255)
PNG_COMPRESS_LEVEL = 2
# Run-length deflate after PNG's row filters: on cut-outs smaller and a little faster than the
# default strategy at any level up to 6 (docs/performance.md, "Encoder settings").
PNG_STRATEGY = zlib.Z_RLE
WEBP_METHOD = 2
AVIF_SPEED = 8
PALETTE_COLOURS = 256
# The longest side each encoder writes (libjpeg, libwebp, libavif; PNG's is 2**31 - 1).
MAX_SIDE = {
    OutputFormat.PNG: 2**31 - 1,
    OutputFormat.JPEG: 65500,
    OutputFormat.WEBP: 16383,
    OutputFormat.AVIF: 65536,
}
# Changes whenever an encoder setting or the library does: cached results keyed by it are
# never served by a service that would encode differently.
ENCODER_ID = (
    f"pillow{PIL.__version__}-png{PNG_COMPRESS_LEVEL}.{PNG_STRATEGY}"
    f"-isal{isal.__version__}.up{DEFLATE_LEVEL}.{MOSTLY_TRANSPARENT}.jpeg{FINEST_JPEG_QUALITY}"
    f"-webp{WEBP_METHOD}-avif{AVIF_SPEED}-palette{PALETTE_COLOURS}"
)


def encodable(size: tuple[int, int], fmt: OutputFormat) -> bool:
    return max(size) <= MAX_SIDE[fmt]


def require_encodable(size: tuple[int, int], fmt: OutputFormat) -> None:
    """Refuse an output the format cannot hold, before any work is spent on it."""
    if not encodable(size, fmt):
        raise InvalidParameter(
            f"{fmt.value} holds at most {MAX_SIDE[fmt]} pixels per side; the result would be "
            f"{size[0]}x{size[1]}. Set max_width/max_height or choose another format",
            parameter="format",
        )


def encode(
    image: Image.Image,
    fmt: OutputFormat,
    quality: int,
    lossless_png: bool,
    *,
    source_jpeg_quality: float | None = None,
) -> bytes:
    """`source_jpeg_quality`: the image came from a JPEG of that quality, whose lossless PNG
    may take the fast writer (optimizer/png.py)."""
    require_encodable(image.size, fmt)
    buffer = io.BytesIO()
    if fmt is OutputFormat.PNG:
        _png(image, buffer, lossless_png, source_jpeg_quality)
    elif fmt is OutputFormat.JPEG:
        flat = on_background(image, WHITE)
        flat.save(
            buffer, "JPEG", quality=quality, progressive=True, optimize=True, subsampling="4:2:0"
        )
    elif fmt is OutputFormat.WEBP:
        _colour(image).save(buffer, "WEBP", quality=quality, method=WEBP_METHOD)
    else:
        _colour(image).save(buffer, "AVIF", quality=quality, speed=AVIF_SPEED)
    return buffer.getvalue()


def _png(
    image: Image.Image, buffer: io.BytesIO, lossless: bool, source_jpeg_quality: float | None
) -> None:
    if lossless and fast_png_suits(image, source_jpeg_quality):
        buffer.write(encode_png(image))
        return
    if not lossless and image.mode in ("RGB", "RGBA"):
        # FASTOCTREE is the quantizer Pillow offers for RGBA; the palette carries alpha (tRNS).
        image = image.quantize(PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE)
    image.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL, compress_type=PNG_STRATEGY)


def _colour(image: Image.Image) -> Image.Image:
    """WEBP and AVIF encoders take RGB(A); a greyscale mask is widened for them."""
    return image.convert("RGB") if image.mode == "L" else image
