"""Putting the mask on the photo and the cut-out on a background."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops

from optimizer.options import Color

OPAQUE = 255


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
