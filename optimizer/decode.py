"""Decoding untrusted image bytes into an upright RGB or RGBA picture, safely and cheaply.

Safety: only the formats we serve are ever parsed, their structure is walked first with bounds
on scans, segments and header bytes (`optimizer.structure`), and the pixel count is checked
from the header before a single pixel is decoded. No warnings filter is ever changed (filters
are process-wide, and worker threads would leak them into each other). Pillow reads the file
through a reader that stops the work once the caller no longer wants it (`cancelled`).
Cost: a JPEG larger than the requested box is decoded at a reduced scale (`draft`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from contract.errors import InvalidImage, InvalidParameter, TooManyPixels, UnsupportedMediaType
from optimizer.geometry import Box, Size, fit_size
from optimizer.structure import check_structure

DECODABLE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "AVIF")
# libjpeg's luminance table at quality 50 (ITU T.81, Annex K) sums to this; other qualities
# scale it by 5000 / q below 50 and by 200 - 2q above.
STANDARD_LUMINANCE_SUM = 3688
ORIENTATION_TAG = 0x0112
SWAPS_AXES = frozenset({5, 6, 7, 8})  # EXIF orientations that rotate by 90 degrees
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Where Pillow reads an orientation from (EXIF, or XMP's tiff:Orientation).
ORIENTATION_SOURCES = ("exif", "xmp", "XML:com.adobe.xmp")
Cancelled = Callable[[], bool]
BOMB = (Image.DecompressionBombError, Image.DecompressionBombWarning)

Image.init()


class WorkCancelled(Exception):
    """The caller stopped waiting for this image (its request is gone)."""


class _Reader(io.BytesIO):
    """The file as Pillow reads it, a block at a time; each read first asks whether the work
    is still wanted."""

    def __init__(self, data: bytes, cancelled: Cancelled | None) -> None:
        super().__init__(data)
        self._cancelled = cancelled

    def read(self, size: int | None = -1) -> bytes:
        if self._cancelled is not None and self._cancelled():
            raise WorkCancelled()
        return super().read(size)


def open_image(
    data: bytes,
    *,
    max_input_pixels: int,
    draft_box: Box | None = None,
    draft_area: int | None = None,
    cancelled: Cancelled | None = None,
) -> Image.Image:
    """Read the header only: the structure's bounds, the format allow-list, the pixel cap, and
    the reduced JPEG scale that `draft_box`/`draft_area` (the output's size limits) allow. No
    pixel is decoded, so `size` and `mode` tell what decoding will cost."""
    image = _open(data, cancelled)
    width, height = image.size
    if width * height > max_input_pixels:
        raise TooManyPixels(
            f"Image is {width}x{height} = {width * height} pixels; the limit is {max_input_pixels}"
        )
    if (draft_box is not None or draft_area is not None) and image.format == "JPEG":
        _draft(image, draft_box or (None, None), draft_area)
    return image


def decode_image(
    data: bytes,
    *,
    max_input_pixels: int,
    draft_box: Box | None = None,
    draft_area: int | None = None,
    cancelled: Cancelled | None = None,
) -> Image.Image:
    """Decode, orient and normalise to RGB/RGBA (see `open_image` for the arguments)."""
    image = open_image(
        data,
        max_input_pixels=max_input_pixels,
        draft_box=draft_box,
        draft_area=draft_area,
        cancelled=cancelled,
    )
    return load_image(image)


def open_background(data: bytes, *, max_input_pixels: int) -> Image.Image:
    """`open_image` for a background image (`bg_image`): one that is not an image we decode
    is a bad value of that option."""
    try:
        return open_image(data, max_input_pixels=max_input_pixels)
    except (InvalidImage, UnsupportedMediaType) as error:
        raise InvalidParameter(
            f"bg_image is not a usable image: {error.details}", parameter="bg_image"
        ) from None


def decode_background(
    data: bytes, *, max_input_pixels: int, canvas: Size | None = None
) -> Image.Image:
    """A background image, decoded under the same caps as the photo; a JPEG larger than what
    covering `canvas` needs is decoded at a reduced scale."""
    image = open_background(data, max_input_pixels=max_input_pixels)
    if canvas is not None and image.format == "JPEG":
        stored = canvas[::-1] if orientation(image) in SWAPS_AXES else canvas
        # draft keeps both sides at least this large: enough to cover the canvas
        image.draft(image.mode, _cover_size(image.size, stored))
    try:
        return load_image(image)
    except InvalidImage as error:
        raise InvalidParameter(
            f"bg_image is not a usable image: {error.details}", parameter="bg_image"
        ) from None


def _cover_size(size: Size, canvas: Size) -> Size:
    scale = max(canvas[0] / size[0], canvas[1] / size[1])
    return max(1, math.ceil(size[0] * scale)), max(1, math.ceil(size[1] * scale))


def load_image(image: Image.Image) -> Image.Image:
    """Decode the pixels of an image `open_image` returned, upright, in RGB or RGBA."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, *BOMB) as exc:
        raise InvalidImage(f"Image could not be decoded: {exc}") from None
    method = TRANSPOSE.get(orientation(image))
    if method is None:
        return to_rgb_or_rgba(image)
    upright = image.transpose(method)
    for key in ORIENTATION_SOURCES:  # upright now: nothing may turn it again
        upright.info.pop(key, None)
    return to_rgb_or_rgba(upright)


def orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 when there is none, or when the EXIF block cannot be read: the
    pixels decode all the same)."""
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # Pillow raises whatever a malformed block makes its parser raise
        return 1
    return value if value in TRANSPOSE else 1


def _open(data: bytes, cancelled: Cancelled | None = None) -> Image.Image:
    if not data:
        raise InvalidImage("The file is empty")
    check_structure(data)
    try:
        return Image.open(_Reader(data, cancelled), formats=DECODABLE_FORMATS)
    except UnidentifiedImageError:
        pass
    except BOMB as exc:
        raise TooManyPixels(str(exc)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"Image header could not be read: {exc}") from None
    if _looks_like_supported_format(data):
        raise InvalidImage("The image is truncated or corrupt")
    raise UnsupportedMediaType(
        f"Not an image in a supported format ({', '.join(DECODABLE_FORMATS)})"
    )


def _looks_like_supported_format(data: bytes) -> bool:
    head = data[:32]
    return any(
        accept is not None and bool(accept(head))
        for name in DECODABLE_FORMATS
        if name in Image.OPEN
        for accept in [Image.OPEN[name][1]]
    )


def _draft(image: Image.Image, box: Box, max_area: int | None) -> None:
    """Ask libjpeg for the smallest 1/2, 1/4 or 1/8 scale still covering the output size."""
    stored_box = box[::-1] if orientation(image) in SWAPS_AXES else box
    target = fit_size(image.size, stored_box, max_area)
    if target != image.size:
        image.draft(image.mode, target)


def to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    """One of two modes downstream: RGBA when the input carries transparency, else RGB."""
    if image.mode in ("RGB", "RGBA"):
        return image
    if image.mode.startswith("I") or image.mode == "F":
        return _wide_to_grey(image).convert("RGB")
    has_alpha = image.mode in ("LA", "La", "PA", "RGBa") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _wide_to_grey(image: Image.Image) -> Image.Image:
    """16/32-bit and float greys scaled to 8 bits (Pillow's own convert would clip at 255),
    in integer or float32 steps: no intermediate wider than the input's own pixels."""
    pixels = np.asarray(image)
    if pixels.dtype.kind == "f":
        scaled = np.clip(pixels, 0.0, 1.0, dtype=np.float32)
        grey = np.multiply(scaled, 255, out=scaled).astype(np.uint8)
    elif image.mode.startswith("I;16") or pixels.max(initial=0) > 255:
        high = np.right_shift(pixels, 8)  # the high byte of 16 bits
        grey = np.minimum(high, 255, out=high).astype(np.uint8)
    else:
        grey = np.clip(pixels, 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L")


def identify_format(data: bytes) -> str:
    """The format name of an image we decode, from its header alone."""
    with _open(data) as image:
        return image.format or "unknown"


def jpeg_quality(data: bytes) -> float | None:
    """The libjpeg quality setting a JPEG's luminance table matches (about 99 for a table of
    ones); None for anything that is not a readable JPEG. Reads the header only."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            return jpeg_quality_of(image)
    except (OSError, SyntaxError, ValueError, EOFError, *BOMB):
        return None


def jpeg_quality_of(image: Image.Image) -> float | None:
    """The same from an opened image's header (None unless it is a JPEG)."""
    tables = (getattr(image, "quantization", None) or {}) if image.format == "JPEG" else {}
    if not tables:
        return None
    scale = 100 * sum(tables[min(tables)]) / STANDARD_LUMINANCE_SUM
    return 100 - scale / 2 if scale <= 100 else 5000 / scale
