"""Sizes and boxes: fitting into the requested box, the subject's box in an alpha mask,
margins around it, the region of interest, and where the subject lands on the canvas
(`place`). Everything but `alpha_box` works on numbers alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

Size = tuple[int, int]
Box = tuple[int | None, int | None]  # (max_width, max_height); None leaves that side free
Bounds = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom excluded)
Rect = tuple[float, float, float, float]  # the same in fractional pixels
Share = tuple[float, float]  # a point as shares of a width and a height, 0..1

# Alpha above this counts as subject: u2net masks carry faint noise far from the subject, and a
# single stray grey pixel should not stretch the subject's box to the frame.
SUBJECT_ALPHA_THRESHOLD = 16


@dataclass(frozen=True)
class Length:
    """A length in pixels, or a percentage of a reference side."""

    value: int = 0
    percent: bool = False

    def pixels(self, side: int) -> int:
        return round(side * self.value / 100) if self.percent else self.value


Margin = Length  # one side of `crop_margin`: pixels, or % of the subject box's larger side


@dataclass(frozen=True)
class Margins:
    """`crop_margin`'s four sides, in CSS order."""

    top: Length = Length()
    right: Length = Length()
    bottom: Length = Length()
    left: Length = Length()

    @classmethod
    def all(cls, side: Length) -> Margins:
        return cls(side, side, side, side)

    @property
    def uniform(self) -> Length | None:
        """The one length of all four sides, or None when they differ."""
        return self.top if self.top == self.right == self.bottom == self.left else None


@dataclass(frozen=True)
class Roi:
    """A region of interest: x1 y1 x2 y2, percentages of the image's width or height."""

    left: Length
    top: Length
    right: Length
    bottom: Length

    @property
    def in_pixels(self) -> bool:
        return not all(side.percent for side in (self.left, self.top, self.right, self.bottom))


def fit_size(size: Size, box: Box, max_area: int | None = None) -> Size:
    """The largest size inside `box` (and `max_area` pixels) with `size`'s aspect ratio, never
    larger than `size`."""
    width, height = size
    max_width, max_height = box
    scale = min(
        1.0,
        max_width / width if max_width else 1.0,
        max_height / height if max_height else 1.0,
        math.sqrt(max_area / (width * height)) if max_area else 1.0,
    )
    if scale >= 1.0:
        return size
    return max(1, round(width * scale)), max(1, round(height * scale))


def alpha_box(alpha: np.ndarray, threshold: int = SUBJECT_ALPHA_THRESHOLD) -> Bounds | None:
    """The bounding box of the pixels above `threshold`; None when there are none."""
    solid = alpha > threshold
    rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def subject_bounds(mask: Image.Image, margin: Length | Margins) -> Bounds | None:
    """The subject's box in `mask`, grown by `margin` and clipped to the mask."""
    bounds = alpha_box(np.asarray(mask))
    if bounds is None:
        return None
    margins = margin if isinstance(margin, Margins) else Margins.all(margin)
    return clip(grow(bounds, margins), mask.size)


def grow(bounds: Bounds, margins: Margins) -> Bounds:
    """`bounds` with each side moved out by its margin (percentages of the larger side)."""
    left, top, right, bottom = bounds
    side = max(right - left, bottom - top)
    return (
        left - margins.left.pixels(side),
        top - margins.top.pixels(side),
        right + margins.right.pixels(side),
        bottom + margins.bottom.pixels(side),
    )


def clip(bounds: Bounds, size: Size) -> Bounds:
    left, top, right, bottom = bounds
    width, height = size
    return max(0, left), max(0, top), min(width, right), min(height, bottom)


def is_empty(bounds: Rect) -> bool:
    left, top, right, bottom = bounds
    return right <= left or bottom <= top


def dimensions(bounds: Rect) -> tuple[float, float]:
    left, top, right, bottom = bounds
    return right - left, bottom - top


def size_of(bounds: Bounds) -> Size:
    left, top, right, bottom = bounds
    return right - left, bottom - top


def rounded(rect: Rect) -> Bounds:
    left, top, right, bottom = rect
    return round(left), round(top), round(right), round(bottom)


def resolve_roi(roi: Roi, size: Size) -> Bounds | None:
    """The region in pixels of an image of `size`; None when it is empty or leaves the image."""
    width, height = size
    bounds = (
        roi.left.pixels(width),
        roi.top.pixels(height),
        roi.right.pixels(width),
        roi.bottom.pixels(height),
    )
    if is_empty(bounds) or clip(bounds, size) != bounds:
        return None
    return bounds


@dataclass(frozen=True)
class Layout:
    """Where the photo goes: its region `source` (photo pixels) is resampled onto `target`
    (output pixels) of an output of `size`; the rest of the output is empty."""

    size: Size
    source: Rect
    target: Bounds

    @property
    def fills_output(self) -> bool:
        return self.target == (0, 0, *self.size)


@dataclass(frozen=True)
class Placement:
    """The placement options, resolved: `scale` a share of the canvas (None: the subject keeps
    its pixel size), `position` shares of the free room (None: where it was), `canvas` the
    output size before `box`/`max_area` (None: the frame's own size)."""

    scale: float | None = None
    position: Share | None = None
    canvas: Size | None = None


def fit_frame(frame: Bounds, box: Box, max_area: int | None) -> Layout:
    """No placement: the frame (the photo, or its crop) fitted into the output limits."""
    size = fit_size(size_of(frame), box, max_area)
    return Layout(size, frame, (0, 0, *size))


def place(
    frame: Bounds, subject: Bounds, placement: Placement, box: Box, max_area: int | None
) -> Layout:
    """The frame drawn so that `subject` (a box in photo pixels) sits on the canvas at the
    placement's scale and position, the canvas then fitted into the output limits.

    Only the part of the frame that lands on the canvas is drawn (`source` -> `target`).
    """
    canvas = placement.canvas or size_of(frame)
    width, height = size_of(subject)
    factor = 1.0
    if placement.scale is not None:
        factor = placement.scale * min(canvas[0] / width, canvas[1] / height)
    share_x, share_y = placement.position or original_position(frame, subject)
    left = share_x * (canvas[0] - width * factor)
    top = share_y * (canvas[1] - height * factor)
    size = fit_size(canvas, box, max_area)
    zoom_x, zoom_y = size[0] / canvas[0], size[1] / canvas[1]

    def to_output(x: float, y: float) -> tuple[float, float]:
        return zoom_x * (left + (x - subject[0]) * factor), zoom_y * (
            top + (y - subject[1]) * factor
        )

    def to_photo(x: float, y: float) -> tuple[float, float]:
        return subject[0] + (x / zoom_x - left) / factor, subject[1] + (y / zoom_y - top) / factor

    drawn = (*to_output(frame[0], frame[1]), *to_output(frame[2], frame[3]))
    target = clip(rounded(drawn), size)
    if is_empty(target):
        return Layout(size, (0.0, 0.0, 0.0, 0.0), (0, 0, 0, 0))
    source = (*to_photo(target[0], target[1]), *to_photo(target[2], target[3]))
    return Layout(size, clip_rect(source, frame), target)


def original_position(frame: Bounds, subject: Bounds) -> Share:
    """Where `subject` sits in `frame`, as shares of the free room (0.5 where there is none)."""
    free_x = (frame[2] - frame[0]) - (subject[2] - subject[0])
    free_y = (frame[3] - frame[1]) - (subject[3] - subject[1])
    return (
        (subject[0] - frame[0]) / free_x if free_x else 0.5,
        (subject[1] - frame[1]) / free_y if free_y else 0.5,
    )


def clip_rect(rect: Rect, frame: Bounds) -> Rect:
    """Rounding may push a mapped edge a hair outside the frame; resampling must not read
    there."""
    return (
        max(rect[0], frame[0]),
        max(rect[1], frame[1]),
        min(rect[2], frame[2]),
        min(rect[3], frame[3]),
    )


def cover_box(size: Size, canvas: Size) -> Rect:
    """The centred region of an image of `size` with the canvas's aspect ratio: scaled to the
    canvas, it covers it exactly."""
    width, height = size
    scale = max(canvas[0] / width, canvas[1] / height)
    used_width, used_height = canvas[0] / scale, canvas[1] / scale
    left, top = (width - used_width) / 2, (height - used_height) / 2
    return left, top, left + used_width, top + used_height
