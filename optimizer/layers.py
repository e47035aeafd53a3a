"""From the photo and the model's mask to the two layers the output is made of: the photo's
colours and its alpha, both already cropped, scaled and placed (`optimizer/placement.py`).

Each layer is resampled once, straight from its source to the size it is drawn at: the photo
from its decoded pixels, the alpha from the model's 320 px mask. Only the part that lands on
the output is drawn (`Layers.layout.target`); the rest of the output is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from optimizer.geometry import (
    Bounds,
    Rect,
    alpha_box,
    clip,
    dimensions,
    grow,
    is_empty,
    rounded,
    size_of,
)
from optimizer.options import Options
from optimizer.placement import Layout, fit_frame, place
from optimizer.subject import subject_in_photo

RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0  # box-reduce first, Lanczos the rest: same look, a fraction of the time


@dataclass(frozen=True)
class Layers:
    image: Image.Image  # the photo's drawn part, RGB or RGBA, the target's size
    alpha: Image.Image  # its alpha (L), the same size
    layout: Layout

    @property
    def offset(self) -> tuple[int, int]:
        return self.layout.target[0], self.layout.target[1]

    def alpha_on_canvas(self) -> Image.Image:
        """The alpha over the whole output (zero where nothing is drawn)."""
        if self.layout.fills_output:
            return self.alpha
        canvas = Image.new("L", self.layout.size, 0)
        canvas.paste(self.alpha, self.offset)
        return canvas

    def foreground(self) -> Bounds | None:
        """The subject's box in the output."""
        found = alpha_box(np.asarray(self.alpha))
        if found is None:
            return None
        left, top = self.offset
        return found[0] + left, found[1] + top, found[2] + left, found[3] + top


def shape(
    image: Image.Image, model_mask: np.ndarray, options: Options, region: Bounds | None = None
) -> Layers:
    """`region`: the part of the photo the mask covers (the region of interest); nothing
    outside it is foreground. None: the whole photo."""
    mask = Image.fromarray(model_mask, mode="L")
    whole = (0, 0, *image.size)
    layout = _layout(image, mask, options, region or whole)
    size = size_of(layout.target)
    if is_empty(layout.target):
        return Layers(image.crop((0, 0, 0, 0)), Image.new("L", (0, 0)), layout)
    return Layers(
        _resample(image, layout.source, size),
        _alpha(mask, region or whole, layout.source, size),
        layout,
    )


def _layout(image: Image.Image, mask: Image.Image, options: Options, region: Bounds) -> Layout:
    frame = (0, 0, *image.size)
    placement = options.placement
    if not options.crop and placement is None:
        return fit_frame(frame, options.box, options.max_output_pixels)
    subject = subject_in_photo(mask, region)
    placed = frame if subject is None else subject
    if options.crop and subject is not None:
        # Cropped to the subject and its margins (within the photo); placed on a canvas, the
        # margins are room around the subject even where the photo ends.
        placed = grow(subject, options.crop_margin)
        frame = clip(placed, image.size)
    if placement is None:
        return fit_frame(frame, options.box, options.max_output_pixels)
    return place(frame, placed, placement, options.box, options.max_output_pixels)


def _resample(image: Image.Image, source: Rect, size: tuple[int, int]) -> Image.Image:
    whole = (0, 0, *image.size)
    if source == whole and size == image.size:
        return image
    if dimensions(source) == size and all(float(edge).is_integer() for edge in source):
        return image.crop(rounded(source))
    if source == whole:
        return image.resize(size, RESAMPLE, reducing_gap=REDUCING_GAP)
    return image.resize(size, RESAMPLE, box=source, reducing_gap=REDUCING_GAP)


def _alpha(mask: Image.Image, region: Bounds, source: Rect, size: tuple[int, int]) -> Image.Image:
    """The mask (covering `region` of the photo) drawn from `source` onto `size` pixels."""
    to_mask_x = mask.width / (region[2] - region[0])
    to_mask_y = mask.height / (region[3] - region[1])

    def in_mask(rect: Rect) -> Rect:
        return (
            (rect[0] - region[0]) * to_mask_x,
            (rect[1] - region[1]) * to_mask_y,
            (rect[2] - region[0]) * to_mask_x,
            (rect[3] - region[1]) * to_mask_y,
        )

    inside = (
        max(source[0], region[0]),
        max(source[1], region[1]),
        min(source[2], region[2]),
        min(source[3], region[3]),
    )
    if inside == source:
        box = in_mask(source)
        if box == (0, 0, *mask.size):
            return mask.resize(size, RESAMPLE)
        return mask.resize(size, RESAMPLE, box=box)
    canvas = Image.new("L", size, 0)
    if is_empty(inside):
        return canvas
    zoom_x = size[0] / (source[2] - source[0])
    zoom_y = size[1] / (source[3] - source[1])
    target = clip(
        (
            round((inside[0] - source[0]) * zoom_x),
            round((inside[1] - source[1]) * zoom_y),
            round((inside[2] - source[0]) * zoom_x),
            round((inside[3] - source[1]) * zoom_y),
        ),
        size,
    )
    if not is_empty(target):
        drawn_size = (target[2] - target[0], target[3] - target[1])
        drawn = mask.resize(drawn_size, RESAMPLE, box=in_mask(inside))
        canvas.paste(drawn, target[:2])
    return canvas
