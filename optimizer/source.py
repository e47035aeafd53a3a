"""An input before any pixel is decoded: its header read once per request (bounded, see
`optimizer.structure`), what decoding and encoding would refuse refused, and the memory its
processing will need, known from the header alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from optimizer.decode import (
    SWAPS_AXES,
    Cancelled,
    jpeg_quality_of,
    open_background,
    open_image,
    orientation,
)
from optimizer.encode import require_encodable
from optimizer.geometry import Size, fit_size
from optimizer.memory import bytes_needed, composition_bytes
from optimizer.options import Options


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
