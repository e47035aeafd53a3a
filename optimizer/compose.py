"""Putting the mask on the photo, and the cut-out on a background: a colour or a picture,
with a drop shadow between them."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from optimizer.edges import decontaminate
from optimizer.geometry import Size, alpha_box
from optimizer.layers import Layers
from optimizer.options import Color, Options
from optimizer.placement import cover_box

OPAQUE = 255
RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0
# The drop shadow, in shares of the subject's larger side: moved this far right and down,
# blurred with this Gaussian radius (docs/api.md, "Composition").
SHADOW_OFFSET = 0.02
SHADOW_BLUR = 0.02
SHADOW_GRID_RADIUS = 4  # the blur's radius on the reduced grid it is computed on
MAX_SHADOW_ALPHA = 254


def cutout(image: Image.Image, mask: Image.Image) -> Image.Image:
    """RGBA with the mask as alpha, colours untouched where any alpha remains (rembg darkens
    edges; we keep them), and zeroed where the pixel is fully transparent: invisible either
    way, but the PNG of a cut-out is then about half the size and its encoding time
    (docs/performance.md, "Encoder settings").

    An input that already had transparency keeps it: the two alphas multiply.
    """
    alpha = ImageChops.multiply(mask, image.getchannel("A")) if image.mode == "RGBA" else mask
    result = image.convert("RGBA")
    result.putalpha(alpha)
    pixels = np.array(result)
    # One 32-bit word per pixel: clearing a whole pixel is one store.
    words = pixels.view(np.uint32).reshape(pixels.shape[:2])
    np.copyto(words, 0, where=np.asarray(alpha) == 0)
    return Image.fromarray(pixels)


def on_background(image: Image.Image, color: Color) -> Image.Image:
    """Composite onto a solid colour; an opaque colour gives an RGB (fully opaque) image."""
    if image.mode not in ("RGBA", "LA"):
        return image
    backdrop = Image.new("RGBA", image.size, color)
    backdrop.alpha_composite(image.convert("RGBA"))
    return backdrop.convert("RGB") if color[3] == OPAQUE else backdrop


def cover(background: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The background scaled to cover `size` and centred (cropped, never stretched);
    unchanged when it already has that size."""
    if background.size == size:
        return background
    return background.resize(
        size, RESAMPLE, box=cover_box(background.size, size), reducing_gap=REDUCING_GAP
    )


def drop_shadow(
    alpha: Image.Image, offset: tuple[int, int], size: tuple[int, int], opacity: int
) -> Image.Image:
    """A soft black shadow (RGBA, `size`) cast by `alpha` drawn at `offset`: moved down-right
    and blurred by shares of the subject's larger side, its darkest alpha `opacity` percent
    (at most 254: a shadow alone is never fully opaque).

    Blurred on a grid reduced so that the blur spans a few of its pixels, then scaled back:
    the same soft shadow for a fraction of a full-size blur's cost.
    """
    found = alpha_box(np.asarray(alpha))
    side = 1 if found is None else max(found[2] - found[0], found[3] - found[1])
    radius = max(1.0, SHADOW_BLUR * side)
    shift = max(1, round(SHADOW_OFFSET * side))
    factor = max(1, int(radius // SHADOW_GRID_RADIUS))
    small_size = (-(-size[0] // factor), -(-size[1] // factor))
    small = Image.new("L", small_size, 0)
    small.paste(
        alpha.reduce(factor) if factor > 1 else alpha,
        (round((offset[0] + shift) / factor), round((offset[1] + shift) / factor)),
    )
    small = small.filter(ImageFilter.GaussianBlur(radius / factor))
    darkest = min(MAX_SHADOW_ALPHA, round(opacity * OPAQUE / 100))
    small = small.point(lambda value: value * darkest // OPAQUE)
    shade = small.resize(
        size, Image.Resampling.BILINEAR, box=(0, 0, size[0] / factor, size[1] / factor)
    )
    shadow = Image.new("RGBA", size, (0, 0, 0, 0))
    shadow.putalpha(shade)
    return shadow


def compose(layers: Layers, options: Options, background: Image.Image | None) -> Image.Image:
    """The subject's colours (edges decontaminated) under its alpha, on the canvas, over its
    shadow, over the background."""
    photo = layers.image
    if options.decontaminate:
        photo = decontaminate(photo, layers.alpha)
    subject = cutout(photo, layers.alpha)
    if layers.layout.fills_output and not options.shadow and background is None:
        return subject if options.bg_color is None else on_background(subject, options.bg_color)
    size = layers.layout.size
    backdrop = _backdrop(size, options, background)
    if options.shadow:
        shadow = drop_shadow(layers.alpha, layers.offset, size, options.shadow_opacity)
        backdrop = shadow if backdrop is None else Image.alpha_composite(backdrop, shadow)
    if backdrop is None:
        backdrop = Image.new("RGBA", size, (0, 0, 0, 0))
        backdrop.paste(subject, layers.offset)  # onto nothing: the subject's pixels as they are
        return backdrop
    if subject.width and subject.height:
        backdrop.alpha_composite(subject, layers.offset)
    opaque = background.mode == "RGB" if background is not None else _opaque(options)
    return backdrop.convert("RGB") if opaque else backdrop


def _backdrop(size: Size, options: Options, background: Image.Image | None) -> Image.Image | None:
    """The background at the canvas's size (RGBA), or None for a transparent one."""
    if background is not None:
        return cover(background, size).convert("RGBA")
    if options.bg_color is not None:
        return Image.new("RGBA", size, options.bg_color)
    return None


def _opaque(options: Options) -> bool:
    return options.bg_color is not None and options.bg_color[3] == OPAQUE
