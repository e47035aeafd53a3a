"""Sizes and boxes: fitting into the requested box and finding the subject's bounding box."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from optimizer.options import Margin

Size = tuple[int, int]
Box = tuple[int | None, int | None]  # (max_width, max_height); None leaves that side free
Bounds = tuple[int, int, int, int]  # left, top, right, bottom

# Alpha above this counts as subject when cropping: u2net masks carry faint noise far from the
# subject, and a single stray grey pixel should not stretch the crop to the frame.
SUBJECT_ALPHA_THRESHOLD = 16


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


def subject_bounds(mask: Image.Image, margin: Margin) -> Bounds | None:
    """Bounding box of mask pixels above the threshold, grown by `margin`, clipped to the mask."""
    solid = np.asarray(mask) > SUBJECT_ALPHA_THRESHOLD
    rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
    if rows.size == 0:
        return None
    left, top, right, bottom = int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
    pad = margin.pixels(max(right - left, bottom - top))
    width, height = mask.size
    return max(0, left - pad), max(0, top - pad), min(width, right + pad), min(height, bottom + pad)
