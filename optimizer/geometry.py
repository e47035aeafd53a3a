"""Sizes and boxes: fitting into the requested box, the subject's box in an alpha mask,
margins around it, and the region of interest. Everything but `alpha_box` and
`subject_bounds` works on numbers alone; where the subject lands on the canvas is
`optimizer.placement`'s.
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
    fitted = max(1, round(width * scale)), max(1, round(height * scale))
    if max_area and fitted[0] * fitted[1] > max_area:  # "up to" that many pixels
        fitted = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    return fitted


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
    bounds = roi_pixels(roi, size)
    if is_empty(bounds) or clip(bounds, size) != bounds:
        return None
    return bounds


def roi_pixels(roi: Roi, size: Size) -> Bounds:
    """The region in pixels of an image of `size`, as written (possibly empty or outside)."""
    width, height = size
    return (
        roi.left.pixels(width),
        roi.top.pixels(height),
        roi.right.pixels(width),
        roi.bottom.pixels(height),
    )
