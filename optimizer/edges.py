"""Edge decontamination: the foreground's own colour where the matte is soft.

A pixel with alpha a shows I = a*F + (1-a)*B: the subject's colour F mixed with the old
background's B. Kept as it is, B bleeds into a new background (a green fringe from a green
screen). Blur-Fusion (M. Forte and F. Pitié, "Approximate Fast Foreground Colour Estimation",
ICIP 2021, doi:10.1109/ICIP42928.2021.9506164) estimates F from the local means of the
foreground and of the background around each pixel, over an r x r box:

    F_r = mean(a*I) / mean(a),  B_r = mean((1-a)*I) / mean(1-a)
    F = F_r + a * (I - a*F_r - (1-a)*B_r),  clipped to the colour range

with r = 90: the paper's one-pass variant, within the cost budget (docs/performance.md,
"Composition"); its second pass repeats the formula over a 6 px box at full resolution. Where
0 < a < 255 the colour becomes F; elsewhere, and in the matte itself, nothing changes.

Made cheap: the box means are smooth at that size, so they are taken on the image
box-reduced 8x and scaled back bilinearly; the formula runs on strips of rows, which bounds
the float working memory whatever the image's size and keeps it in the CPU's cache.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops

WINDOW = 90  # the box's side, in pixels
REDUCE = 8  # the means on an image reduced 8x: the box is 11 px there
STRIP = 32  # rows per step: at most 32 x 4000 x 3 float32 = 1.5 MB per working array
EPSILON = 1e-5
BILINEAR = Image.Resampling.BILINEAR


def decontaminate(image: Image.Image, alpha: Image.Image) -> Image.Image:
    """`image` (RGB or RGBA, the size of `alpha`) with the foreground colour estimated where
    0 < alpha < 255."""
    rgb = image.convert("RGB") if image.mode == "RGBA" else image
    matte = np.asarray(alpha)
    soft = (matte > 0) & (matte < 255)
    if not soft.any():
        return image
    weighted = ImageChops.multiply(rgb, Image.merge("RGB", (alpha, alpha, alpha)))
    foreground, background = _means(rgb, weighted, alpha)
    pixels = np.array(rgb)
    for top in range(0, rgb.height, STRIP):
        rows = slice(top, min(rgb.height, top + STRIP))
        columns = np.flatnonzero(soft[rows].any(axis=0))
        if columns.size:
            part = (rows, slice(int(columns[0]), int(columns[-1]) + 1))
            strip = _estimate(pixels[part], matte[part], foreground, background, part)
            np.copyto(pixels[part], strip, where=soft[part][..., np.newaxis])
    result = Image.fromarray(pixels)
    if image.mode == "RGBA":
        result.putalpha(image.getchannel("A"))
    return result


def _means(
    rgb: Image.Image, weighted: Image.Image, alpha: Image.Image
) -> tuple[Image.Image, Image.Image]:
    """F_r and B_r on the reduced grid, as RGB images. Box means are linear, so those of I,
    a*I and a give those of (1-a)*I and 1-a too."""
    size = max(1, round(WINDOW / REDUCE))
    image = _box_mean(_reduced(rgb), size)
    fore = _box_mean(_reduced(weighted), size)
    share = _box_mean(_reduced(alpha)[..., np.newaxis], size)
    return (
        _colours(fore / (share + EPSILON)),
        _colours((image - fore) / (1 - share + EPSILON)),
    )


def _reduced(image: Image.Image) -> np.ndarray:
    return np.asarray(image.reduce(REDUCE), np.float32) / 255


def _colours(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8))


def _box_mean(values: np.ndarray, size: int) -> np.ndarray:
    """The mean over a size x size box (fewer pixels at the borders), by summed areas."""
    before, after = size // 2, size - size // 2
    summed = np.pad(np.cumsum(np.cumsum(values, 0, np.float64), 1), ((1, 0), (1, 0), (0, 0)))
    height, width = values.shape[:2]
    y0 = np.clip(np.arange(height) - before, 0, height)
    y1 = np.clip(np.arange(height) + after, 0, height)
    x0 = np.clip(np.arange(width) - before, 0, width)
    x1 = np.clip(np.arange(width) + after, 0, width)
    total = summed[y1][:, x1] - summed[y0][:, x1] - summed[y1][:, x0] + summed[y0][:, x0]
    count = ((y1 - y0)[:, np.newaxis] * (x1 - x0)[np.newaxis, :])[..., np.newaxis]
    return (total / count).astype(np.float32)


def _estimate(
    colours: np.ndarray,
    matte: np.ndarray,
    foreground: Image.Image,
    background: Image.Image,
    part: tuple[slice, slice],
) -> np.ndarray:
    """Blur-Fusion's F on one part of a strip of rows, as uint8, in the equivalent form
    F = I + (1-a) * (F_r - I + a*(F_r - B_r)), in place (no temporary as large as the part)."""
    fore = _scaled_part(foreground, part)
    share = matte[..., np.newaxis] * np.float32(1 / 255)
    estimate = np.subtract(fore, _scaled_part(background, part), dtype=np.float32)
    estimate *= share
    estimate += fore
    estimate -= colours
    estimate *= 1 - share
    estimate += colours
    np.clip(estimate, 0, 255, out=estimate)
    estimate += 0.5  # rounds as it is truncated to uint8
    return estimate.astype(np.uint8)


def _scaled_part(small: Image.Image, part: tuple[slice, slice]) -> np.ndarray:
    """A part of the reduced grid's colours scaled back to full size (a full-resolution
    pixel x covers x/8 .. (x+1)/8 there)."""
    rows, columns = part
    box = (
        columns.start / REDUCE,
        rows.start / REDUCE,
        columns.stop / REDUCE,
        rows.stop / REDUCE,
    )
    size = (columns.stop - columns.start, rows.stop - rows.start)
    return np.asarray(small.resize(size, BILINEAR, box=box))
