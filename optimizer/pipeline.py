"""The two halves of one request around the model call: `prepare` before, `finish` after
(the input's header was read before both: `optimizer.source`).

Both are CPU-bound and synchronous; the service runs them in a worker thread. The order of
work (docs/api.md, "Composition"): decode -> region of interest -> model -> edges -> crop and
margins -> scale and position on the canvas -> shadow -> background -> encode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from contract.errors import EMPTY, OUTSIDE, InvalidParameter
from optimizer.compose import compose
from optimizer.decode import Cancelled, WorkCancelled, load_image
from optimizer.edges import decontaminate
from optimizer.encode import encodable, encode
from optimizer.geometry import Bounds, Size, is_empty, resolve_roi, roi_pixels
from optimizer.layers import shape
from optimizer.options import Options, OutputFormat
from optimizer.source import Source

OPAQUE = 255


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
        empty = is_empty(roi_pixels(options.roi, size))
        raise InvalidParameter(
            f"roi must be a non-empty region inside the {size[0]}x{size[1]} image",
            parameter="roi",
            problem=EMPTY if empty else OUTSIDE,
        )
    return region


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
    opaque = options.opaque_format
    if opaque is not None and encodable(picture.size, opaque) and not has_transparency(picture):
        options = replace(
            options, format=opaque, quality=opaque.default_quality, opaque_format=None
        )
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


def has_transparency(picture: Image.Image) -> bool:
    """Whether any pixel of the output is not fully opaque."""
    if picture.mode not in ("RGBA", "LA", "PA"):
        return False
    lowest = picture.getchannel("A").getextrema()[0]
    return isinstance(lowest, int | float) and lowest < OPAQUE


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
    """The photo and its alpha over the whole output: cropped, fitted and placed alike; the
    photo's edge colours re-estimated with `edges=decontaminate`."""
    layers = shape(prepared.image, model_mask, options, prepared.region)
    photo = decontaminate(layers.image, layers.alpha) if options.decontaminate else layers.image
    if layers.layout.fills_output:
        return photo, layers.alpha
    image = Image.new(photo.mode, layers.layout.size)
    image.paste(photo, layers.offset)
    return image, layers.alpha_on_canvas()


def _stop_if(cancelled: Cancelled | None) -> None:
    if cancelled is not None and cancelled():
        raise WorkCancelled()


def _ms(start: float, end: float | None = None) -> float:
    return round(((end or time.perf_counter()) - start) * 1000, 1)
