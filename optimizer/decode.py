"""Decoding untrusted image bytes into an upright RGB or RGBA picture, safely and cheaply.

Safety: only the formats we serve are ever parsed, and the pixel count is checked from the
header before a single pixel is decoded (Pillow itself only warns below twice its limit).
Cost: a JPEG larger than the requested box is decoded at a reduced scale (`draft`).
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from contract.errors import InvalidImage, InvalidParameter, PayloadTooLarge, UnsupportedMediaType
from optimizer.geometry import Box, Size, fit_size

DECODABLE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "AVIF")
# libjpeg's luminance table at quality 50 (ITU T.81, Annex K) sums to this; other qualities
# scale it by 5000 / q below 50 and by 200 - 2q above.
STANDARD_LUMINANCE_SUM = 3688
ORIENTATION_TAG = 0x0112
SWAPS_AXES = frozenset({5, 6, 7, 8})  # EXIF orientations that rotate by 90 degrees

Image.init()


def open_image(
    data: bytes,
    *,
    max_input_pixels: int,
    draft_box: Box | None = None,
    draft_area: int | None = None,
) -> Image.Image:
    """Read the header only: the format allow-list, the pixel cap, and the reduced JPEG scale
    that `draft_box`/`draft_area` (the output's size limits) allow. No pixel is decoded, so
    `size` and `mode` tell what decoding will cost."""
    image = _open(data)
    width, height = image.size
    if width * height > max_input_pixels:
        raise PayloadTooLarge(
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
) -> Image.Image:
    """Decode, orient and normalise to RGB/RGBA (see `open_image` for the arguments)."""
    image = open_image(
        data, max_input_pixels=max_input_pixels, draft_box=draft_box, draft_area=draft_area
    )
    return _load(image)


def open_background(data: bytes, *, max_input_pixels: int) -> Image.Image:
    """`open_image` for a background image (`bg_image`): one that is not an image we decode
    is a bad value of that option."""
    try:
        return open_image(data, max_input_pixels=max_input_pixels)
    except (InvalidImage, UnsupportedMediaType) as error:
        raise InvalidParameter(f"bg_image is not a usable image: {error.details}") from None


def decode_background(
    data: bytes, *, max_input_pixels: int, canvas: Size | None = None
) -> Image.Image:
    """A background image, decoded under the same caps as the photo; a JPEG larger than what
    covering `canvas` needs is decoded at a reduced scale."""
    image = open_background(data, max_input_pixels=max_input_pixels)
    if canvas is not None and image.format == "JPEG":
        orientation = image.getexif().get(ORIENTATION_TAG, 1)
        stored = canvas[::-1] if orientation in SWAPS_AXES else canvas
        # draft keeps both sides at least this large: enough to cover the canvas
        image.draft(image.mode, _cover_size(image.size, stored))
    try:
        return _load(image)
    except InvalidImage as error:
        raise InvalidParameter(f"bg_image is not a usable image: {error.details}") from None


def _cover_size(size: Size, canvas: Size) -> Size:
    scale = max(canvas[0] / size[0], canvas[1] / size[1])
    return max(1, math.ceil(size[0] * scale)), max(1, math.ceil(size[1] * scale))


def _load(image: Image.Image) -> Image.Image:
    """Decode, orient and normalise an opened image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            # In place: an image without a rotation is not copied.
            ImageOps.exif_transpose(image, in_place=True)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage(f"Image could not be decoded: {exc}") from None
    return to_rgb_or_rgba(image)


def _open(data: bytes) -> Image.Image:
    if not data:
        raise InvalidImage("The file is empty")
    try:
        return Image.open(io.BytesIO(data), formats=DECODABLE_FORMATS)
    except UnidentifiedImageError:
        pass
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge(str(exc)) from None
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
    orientation = image.getexif().get(ORIENTATION_TAG, 1)
    stored_box = box[::-1] if orientation in SWAPS_AXES else box
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
            tables = getattr(image, "quantization", None) or {}
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return None
    if not tables:
        return None
    scale = 100 * sum(tables[min(tables)]) / STANDARD_LUMINANCE_SUM
    return 100 - scale / 2 if scale <= 100 else 5000 / scale
