"""The subject's box in photo pixels, from the model's mask, as `crop` and placement see it:
the box of the pixels whose alpha, once the mask is scaled to the photo, is above
`SUBJECT_ALPHA_THRESHOLD`.

Scaling a 320 px mask up to a 12 MP photo is a large resample, and the box only needs the
scaled mask around the subject: the mask is first read at its own size (docs/performance.md,
"Composition").
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from optimizer.geometry import SUBJECT_ALPHA_THRESHOLD, Bounds, alpha_box, clip, size_of

RESAMPLE = Image.Resampling.LANCZOS
# Lanczos-3 upscaling reads 3 source pixels on each side, and its weights' absolute values sum
# to at most 1.55 per axis (2.4 in 2-D): a scaled pixel whose source neighbours are all at or
# below 6 stays at or below the threshold of 16.
SUPPORT = 4
QUIET = 6
# Below this many output pixels per mask pixel, scaling the whole mask costs little anyway.
SMALL_GAIN = 4


def subject_in_photo(mask: Image.Image, region: Bounds) -> Bounds | None:
    """The subject's box, in photo pixels, of `mask`, which covers `region` of the photo."""
    width, height = size_of(region)
    box = _box_around_subject(mask, (width, height))
    if box is None:
        return None
    scaled = mask.resize(
        (box[2] - box[0], box[3] - box[1]),
        RESAMPLE,
        box=(
            box[0] * mask.width / width,
            box[1] * mask.height / height,
            box[2] * mask.width / width,
            box[3] * mask.height / height,
        ),
    )
    found = alpha_box(np.asarray(scaled), SUBJECT_ALPHA_THRESHOLD)
    if found is None:
        return None
    left, top = region[0] + box[0], region[1] + box[1]
    return found[0] + left, found[1] + top, found[2] + left, found[3] + top


def _box_around_subject(mask: Image.Image, size: tuple[int, int]) -> Bounds | None:
    """The part of the scaled mask (of `size`) that can hold subject pixels."""
    if size[0] * size[1] <= SMALL_GAIN * mask.width * mask.height:
        return 0, 0, *size
    coarse = alpha_box(np.asarray(mask), QUIET)
    if coarse is None:
        return None
    left, top, right, bottom = clip(
        (coarse[0] - SUPPORT, coarse[1] - SUPPORT, coarse[2] + SUPPORT, coarse[3] + SUPPORT),
        mask.size,
    )
    scale_x, scale_y = size[0] / mask.width, size[1] / mask.height
    return clip(
        (
            math.floor(left * scale_x),
            math.floor(top * scale_y),
            math.ceil(right * scale_x),
            math.ceil(bottom * scale_y),
        ),
        size,
    )
