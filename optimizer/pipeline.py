"""The two halves of one request around the model call: `prepare` before, `finish` after.

Both are CPU-bound and synchronous; the service runs them in a worker thread. The order of
work (docs/api.md, "Composition"): decode -> region of interest -> model -> edges -> crop and
margins -> scale and position on the canvas -> shadow -> background -> encode.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from contract.errors import InvalidParameter
from optimizer.compose import compose
from optimizer.decode import (
    SWAPS_AXES,
    Cancelled,
    WorkCancelled,
    jpeg_quality_of,
    load_image,
    open_background,
    open_image,
    orientation,
)
from optimizer.encode import ENCODER_ID, encode, require_encodable
from optimizer.geometry import Bounds, Size, fit_size, resolve_roi
from optimizer.layers import shape
from optimizer.memory import bytes_needed, composition_bytes
from optimizer.options import Options, OutputFormat


@dataclass
class Source:
    """An input whose header was read, once per request: the opened image (drafted, no pixel
    decoded yet) and what its header tells."""

    image: Image.Image
    input_bytes: int
    jpeg_quality: float | None  # decides the PNG writer (optimizer/png.py)
    decode_scale: int  # 1, or the reduced JPEG scale (2, 4, 8) the output's size allowed

    def bytes_needed(self, options: Options, background: Size | None = None) -> int:
        """Peak bytes `prepare` + `finish` will need for this input (and a background image
        of size `background`)."""
        needed = bytes_needed(self.image.size, self.image.mode, options.format)
        if not options.composes and background is None:
            return needed
        return needed + composition_bytes(output_size(self.image.size, options), background)


@dataclass
class PreparedImage:
    image: Image.Image
    model_input: np.ndarray | None  # None when the mask is known already
    input_bytes: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    source_jpeg_quality: float | None = None  # decides the PNG writer (optimizer/png.py)
    region: Bounds | None = None  # the region of interest: what the model saw


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


def model_input(image: Image.Image, size: int, region: Bounds | None = None) -> np.ndarray:
    """The uint8 HxWx3 array rembg feeds its model: RGB, Lanczos-resized to a square; with a
    region of interest, of that region alone (the model sees the subject larger)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    rgb = rgb.resize((size, size), Image.Resampling.LANCZOS, box=region)
    return np.asarray(rgb, dtype=np.uint8)


def draft_limits(options: Options) -> dict[str, Any]:
    """The output limits a JPEG may be decoded down to. Only an output that is the photo
    fitted into them may draft: a crop, a placement or a region of interest needs the
    photo's own pixels (and a region in pixels, the photo's own coordinates)."""
    fitted_photo = not options.crop and options.placement is None and options.roi is None
    if options.limits_size and fitted_photo:
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
        require_encodable(output_size(upright, options), options.format)
    return Source(image, len(data), jpeg_quality_of(image), decode_scale(image))


def decode_scale(image: Image.Image) -> int:
    """The reduced scale `draft` chose for a JPEG (1: full size)."""
    config = getattr(image, "decoderconfig", ())
    return int(config[0]) if image.format == "JPEG" and config else 1


def memory_needed(
    data: bytes, options: Options, *, max_input_pixels: int, background: bytes | None = None
) -> int:
    """Peak bytes `prepare` + `finish` will need for this input (and background image), from
    the headers alone. Raises what decoding would for a file that is not a servable image."""
    source = read_source(data, options, max_input_pixels=max_input_pixels)
    backdrop = None
    if background is not None:
        backdrop = open_background(background, max_input_pixels=max_input_pixels).size
    return source.bytes_needed(options, backdrop)


def output_size(size: Size, options: Options) -> Size:
    """The largest output an image of `size` can give with these options (a crop only makes
    it smaller)."""
    return fit_size(options.canvas or size, options.box, options.max_output_pixels)


def prepare(
    source: Source, options: Options, *, model_size: int | None, cancelled: Cancelled | None = None
) -> PreparedImage:
    """Decode, find the region of interest, and (unless `model_size` is None: the mask is
    cached) make the model input. Raises `InvalidParameter` for a region outside the photo."""
    started = time.perf_counter()
    image = load_image(source.image)
    decoded = time.perf_counter()
    _stop_if(cancelled)
    prepared = PreparedImage(
        image,
        None,
        source.input_bytes,
        {"decode": _ms(started, decoded)},
        source_jpeg_quality=source.jpeg_quality,
        region=_region(options, image.size),
    )
    if model_size is not None:
        prepared.model_input = model_input(image, model_size, prepared.region)
        prepared.timings_ms["preprocess"] = _ms(decoded)
    return prepared


def _region(options: Options, size: Size) -> Bounds | None:
    if options.roi is None:
        return None
    region = resolve_roi(options.roi, size)
    if region is None:
        raise InvalidParameter(
            f"roi must be a non-empty region inside the {size[0]}x{size[1]} image"
        )
    return region


def output_id(options: Options) -> str:
    """What decides the output's bytes: the options and the encoder settings."""
    return f"{options.output_id}|{ENCODER_ID}"


def mask_id(options: Options) -> str:
    """What besides the input's bytes and the model decides the model's mask (the region of
    interest it ran on): to be part of the mask cache's key."""
    return options.mask_id


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
    background: Image.Image | None = None,
    cancelled: Cancelled | None = None,
) -> Result:
    """The result from the photo and its mask (at model size; of the region of interest
    when there is one). `background`: the decoded `bg_image` (`decode_background`), when
    `options.bg_image` names one."""
    started = time.perf_counter()
    picture, foreground = make_picture(prepared, mask, options, background)
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
        foreground,
    )


def make_picture(
    prepared: PreparedImage,
    mask: np.ndarray,
    options: Options,
    background: Image.Image | None = None,
) -> tuple[Image.Image, Bounds | None]:
    """The output's pixels before encoding, and the subject's box in them."""
    layers = shape(prepared.image, mask, options, prepared.region)
    if options.only_mask:
        return layers.alpha_on_canvas(), layers.foreground()
    return compose(layers, options, background), layers.foreground()


def shape_layers(
    prepared: PreparedImage, model_mask: np.ndarray, options: Options
) -> tuple[Image.Image, Image.Image]:
    """The photo and its alpha over the whole output: cropped, fitted and placed alike."""
    layers = shape(prepared.image, model_mask, options, prepared.region)
    if layers.layout.fills_output:
        return layers.image, layers.alpha
    image = Image.new(layers.image.mode, layers.layout.size)
    image.paste(layers.image, layers.offset)
    return image, layers.alpha_on_canvas()


def _stop_if(cancelled: Cancelled | None) -> None:
    if cancelled is not None and cancelled():
        raise WorkCancelled()


def _ms(start: float, end: float | None = None) -> float:
    return round(((end or time.perf_counter()) - start) * 1000, 1)
