"""The two halves of one request around the model call: `prepare` before, `finish` after.

Both are CPU-bound and synchronous; the service runs them in a worker thread.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from optimizer.compose import cutout, on_background
from optimizer.decode import (
    SWAPS_AXES,
    Cancelled,
    WorkCancelled,
    jpeg_quality_of,
    load_image,
    open_image,
    orientation,
)
from optimizer.encode import ENCODER_ID, encode, require_encodable
from optimizer.geometry import Bounds, fit_size, subject_bounds
from optimizer.memory import bytes_needed
from optimizer.options import Margin, Options, OutputFormat

RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0  # box-reduce first, Lanczos the rest: same look, a fraction of the time


@dataclass
class Source:
    """An input whose header was read, once per request: the opened image (drafted, no pixel
    decoded yet) and what its header tells."""

    image: Image.Image
    input_bytes: int
    jpeg_quality: float | None  # decides the PNG writer (optimizer/png.py)
    decode_scale: int  # 1, or the reduced JPEG scale (2, 4, 8) the output's size allowed

    def bytes_needed(self, fmt: OutputFormat) -> int:
        """Peak bytes `prepare` + `finish` will need for this input."""
        return bytes_needed(self.image.size, self.image.mode, fmt)


@dataclass
class PreparedImage:
    image: Image.Image
    model_input: np.ndarray | None  # None when the mask is known already
    input_bytes: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    source_jpeg_quality: float | None = None  # decides the PNG writer (optimizer/png.py)


@dataclass
class Result:
    data: bytes
    format: OutputFormat
    width: int
    height: int
    input_bytes: int
    timings_ms: dict[str, float]
    foreground: Bounds | None = None  # the subject's box in the output (left, top, right, bottom)

    @property
    def output_bytes(self) -> int:
        return len(self.data)

    @property
    def compression_ratio(self) -> str:
        return f"{round((1 - self.output_bytes / self.input_bytes) * 100)}%"


def model_input(image: Image.Image, size: int) -> np.ndarray:
    """The uint8 HxWx3 array rembg feeds its model: RGB, Lanczos-resized to a square."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    rgb = rgb.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8)


def draft_limits(options: Options) -> dict[str, Any]:
    """The output limits a JPEG may be decoded down to. Cropping needs full resolution
    around the subject, so only an uncropped fit may draft."""
    if options.limits_size and not options.crop:
        return {"draft_box": options.box, "draft_area": options.max_output_pixels}
    return {}


def read_source(
    data: bytes, options: Options, *, max_input_pixels: int, cancelled: Cancelled | None = None
) -> Source:
    """Read the header (bounded, see `optimizer.structure`) and refuse what decoding or
    encoding would refuse, before any pixel is decoded."""
    image = open_image(
        data, max_input_pixels=max_input_pixels, cancelled=cancelled, **draft_limits(options)
    )
    if not options.crop:  # the output's size is known already
        upright = image.size[::-1] if orientation(image) in SWAPS_AXES else image.size
        require_encodable(fit_size(upright, options.box, options.max_output_pixels), options.format)
    return Source(image, len(data), jpeg_quality_of(image), decode_scale(image))


def decode_scale(image: Image.Image) -> int:
    """The reduced scale `draft` chose for a JPEG (1: full size)."""
    config = getattr(image, "decoderconfig", ())
    return int(config[0]) if image.format == "JPEG" and config else 1


def memory_needed(data: bytes, options: Options, *, max_input_pixels: int) -> int:
    """Peak bytes `prepare` + `finish` will need for this input, from its header alone.
    Raises what decoding would for a file that is not a servable image."""
    return read_source(data, options, max_input_pixels=max_input_pixels).bytes_needed(
        options.format
    )


def prepare(
    source: Source, *, model_size: int | None, cancelled: Cancelled | None = None
) -> PreparedImage:
    """Decode, and (unless `model_size` is None: the mask is cached) make the model input."""
    started = time.perf_counter()
    image = load_image(source.image)
    decoded = time.perf_counter()
    _stop_if(cancelled)
    prepared = PreparedImage(
        image, None, source.input_bytes, {"decode": _ms(started, decoded)}, source.jpeg_quality
    )
    if model_size is not None:
        prepared.model_input = model_input(image, model_size)
        prepared.timings_ms["preprocess"] = _ms(decoded)
    return prepared


def output_id(options: Options) -> str:
    """What decides the output's bytes: the options and the encoder settings."""
    return f"{options.output_id}|{ENCODER_ID}"


def mask_to_png(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def mask_from_png(data: bytes, size: int) -> np.ndarray | None:
    """A cached mask back as an array; None unless it is a `size`-square greyscale PNG."""
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            mask = np.asarray(image.convert("L"))
    except (OSError, ValueError, SyntaxError):
        return None
    return mask if mask.shape == (size, size) else None


def finish(
    prepared: PreparedImage,
    mask: np.ndarray,
    options: Options,
    cancelled: Cancelled | None = None,
) -> Result:
    started = time.perf_counter()
    image, alpha = shape_layers(prepared, mask, options)
    if options.only_mask:
        picture = alpha
    else:
        picture = cutout(image, alpha)
        if options.bg_color is not None:
            picture = on_background(picture, options.bg_color)
    composed = time.perf_counter()
    _stop_if(cancelled)
    data = encode(
        picture,
        options.format,
        options.quality,
        options.lossless_png,
        source_jpeg_quality=prepared.source_jpeg_quality,
    )
    timings = {**prepared.timings_ms, "compose": _ms(started, composed), "encode": _ms(composed)}
    return Result(
        data,
        options.format,
        picture.width,
        picture.height,
        prepared.input_bytes,
        timings,
        subject_bounds(alpha, Margin()),
    )


def shape_layers(
    prepared: PreparedImage, model_mask: np.ndarray, options: Options
) -> tuple[Image.Image, Image.Image]:
    """The photo and its alpha at the output size: cropped (optional) and fitted alike.

    The mask is scaled up only once, straight to the size it is needed at.
    """
    image, mask = prepared.image, Image.fromarray(model_mask, mode="L")
    if options.crop:
        mask = mask.resize(image.size, RESAMPLE)
        bounds = subject_bounds(mask, options.crop_margin)
        if bounds is not None:
            image, mask = image.crop(bounds), mask.crop(bounds)
    size = fit_size(image.size, options.box, options.max_output_pixels)
    if size != image.size:
        image = image.resize(size, RESAMPLE, reducing_gap=REDUCING_GAP)
    if mask.size != size:
        mask = mask.resize(size, RESAMPLE)
    return image, mask


def _stop_if(cancelled: Cancelled | None) -> None:
    if cancelled is not None and cancelled():
        raise WorkCancelled()


def _ms(start: float, end: float | None = None) -> float:
    return round(((end or time.perf_counter()) - start) * 1000, 1)
