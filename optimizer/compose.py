"""Putting the mask on the photo and the cut-out on a background."""

from __future__ import annotations

from PIL import Image, ImageChops

from optimizer.options import Color

OPAQUE = 255


def cutout(image: Image.Image, mask: Image.Image) -> Image.Image:
    """RGBA with the mask as alpha, colours untouched (rembg darkens edges; we keep them).

    An input that already had transparency keeps it: the two alphas multiply.
    """
    alpha = ImageChops.multiply(mask, image.getchannel("A")) if image.mode == "RGBA" else mask
    result = image.convert("RGBA")
    result.putalpha(alpha)
    return result


def on_background(image: Image.Image, color: Color) -> Image.Image:
    """Composite onto a solid colour; an opaque colour gives an RGB (fully opaque) image."""
    if image.mode not in ("RGBA", "LA"):
        return image
    backdrop = Image.new("RGBA", image.size, color)
    backdrop.alpha_composite(image.convert("RGBA"))
    return backdrop.convert("RGB") if color[3] == OPAQUE else backdrop
