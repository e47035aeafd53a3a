"""How much memory processing one image takes, known before a pixel is decoded.

The figures are the peak resident memory per decoded pixel of the whole API-side work on one
image (decode, orientation, mode conversion, model input, mask scaling, compositing,
encoding, the JSON rendering of the result), by input mode and output format, measured with
`.venv/bin/python bench/memory.py` (docs/operations.md, "Memory"). The service admits work by these
weights against its memory budget.
"""

from __future__ import annotations

from optimizer.options import OutputFormat

# Peak bytes per decoded pixel (input mode family -> output format): the measured worst of two
# runs plus 10 % (the runs: docs/operations.md, "Memory").
COLUMNS = (OutputFormat.PNG, OutputFormat.JPEG, OutputFormat.WEBP, OutputFormat.AVIF)
MEASURED = {
    "RGB": (20.5, 24.5, 34.0, 37.5),
    "RGBA": (21.5, 23.5, 34.5, 39.5),
    "L": (21.0, 25.0, 34.0, 36.5),
    "I;16": (20.5, 25.0, 34.0, 38.0),
    "P": (17.5, 21.5, 31.0, 37.5),
}
BYTES_PER_PIXEL = {mode: dict(zip(COLUMNS, row, strict=True)) for mode, row in MEASURED.items()}
# Pillow modes -> the measured family they behave like (wider modes count as the widest).
MODE_FAMILIES = {
    "RGB": "RGB",
    "YCbCr": "RGB",
    "RGBA": "RGBA",
    "RGBa": "RGBA",
    "CMYK": "RGBA",
    "LA": "RGBA",
    "La": "RGBA",
    "PA": "RGBA",
    "L": "L",
    "1": "L",
    "P": "P",
    "I;16": "I;16",
    "I;16B": "I;16",
    "I;16L": "I;16",
    "I;16N": "I;16",
    "I": "I;16",
    "F": "I;16",
}
# What any request costs besides its pixels: buffers, the model input, Python objects.
FIXED_BYTES = 8 * 1024 * 1024
# Composition (a canvas, shadow, background, edges): peak bytes per output pixel beyond the
# above, and per pixel of a decoded background image, the worst format of two runs plus 10 %:
# `.venv/bin/python bench/memory.py --composition` (docs/operations.md, "Memory").
CANVAS_BYTES_PER_PIXEL = 31.5
BACKGROUND_BYTES_PER_PIXEL = 6.0


def bytes_needed(size: tuple[int, int], mode: str, fmt: OutputFormat) -> int:
    """Peak memory of processing an image of `size` pixels decoded in `mode`, into `fmt`."""
    family = MODE_FAMILIES.get(mode)
    per_pixel = (
        BYTES_PER_PIXEL[family][fmt]
        if family is not None
        else max(row[fmt] for row in BYTES_PER_PIXEL.values())
    )
    return FIXED_BYTES + round(size[0] * size[1] * per_pixel)


def composition_bytes(canvas: tuple[int, int], background: tuple[int, int] | None) -> int:
    """What composition adds to `bytes_needed`: its layers on an output of `canvas` pixels,
    and a background image of `background` pixels decoded and scaled to cover it."""
    extra = round(canvas[0] * canvas[1] * CANVAS_BYTES_PER_PIXEL)
    if background is not None:
        extra += round(background[0] * background[1] * BACKGROUND_BYTES_PER_PIXEL)
    return extra
