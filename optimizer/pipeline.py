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
from optimizer.decode import decode_image, jpeg_quality, open_image
from optimizer.encode import ENCODER_ID, encode
from optimizer.geometry import Bounds, fit_size, subject_bounds
from optimizer.memory import bytes_needed
from optimizer.options import Margin, Options, OutputFormat

RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0  # box-reduce first, Lanczos the rest: same look, a fraction of the time


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


def memory_needed(data: bytes, options: Options, *, max_input_pixels: int) -> int:
    """Peak bytes `prepare` + `finish` will need for this input, from its header alone.
    Raises what decoding would for a file that is not a servable image."""
    image = open_image(data, max_input_pixels=max_input_pixels, **draft_limits(options))
    return bytes_needed(image.size, image.mode, options.format)


def prepare(
    data: bytes, options: Options, *, max_input_pixels: int, model_size: int | None
) -> PreparedImage:
    """Decode, and (unless `model_size` is None: the mask is cached) make the model input."""
    started = time.perf_counter()
    image = decode_image(data, max_input_pixels=max_input_pixels, **draft_limits(options))
    decoded = time.perf_counter()
    quality = jpeg_quality(data)
    if model_size is None:
        return PreparedImage(
            image, None, len(data), {"decode": _ms(started, decoded)}, source_jpeg_quality=quality
        )
    tensor = model_input(image, model_size)
    return PreparedImage(
        image=image,
        model_input=tensor,
        input_bytes=len(data),
        timings_ms={"decode": _ms(started, decoded), "preprocess": _ms(decoded)},
        source_jpeg_quality=quality,
    )


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


def finish(prepared: PreparedImage, mask: np.ndarray, options: Options) -> Result:
    started = time.perf_counter()
    image, alpha = shape_layers(prepared, mask, options)
    if options.only_mask:
        picture = alpha
    else:
        picture = cutout(image, alpha)
        if options.bg_color is not None:
            picture = on_background(picture, options.bg_color)
    composed = time.perf_counter()
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


def _ms(start: float, end: float | None = None) -> float:
    return round(((end or time.perf_counter()) - start) * 1000, 1)
