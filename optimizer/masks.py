"""What the result cache keeps of the image work: the identities that decide a mask and an
output's bytes (parts of the cache's keys), and a mask as PNG bytes and back."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from optimizer.encode import ENCODER_ID
from optimizer.options import Options


def output_id(options: Options) -> str:
    """What decides the output's bytes: the options and the encoder settings."""
    return f"{options.output_id}|{ENCODER_ID}"


def mask_id(options: Options) -> str:
    """What besides the input's bytes and the model decides the model's mask (the region of
    interest it ran on): to be part of the mask cache's key."""
    return options.mask_id


def mask_to_png(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def mask_from_png(data: bytes, size: int) -> np.ndarray | None:
    """A cached mask back as an array; None unless it is a `size`-square greyscale PNG."""
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            mask = np.asarray(image.convert("L"))
    except (OSError, ValueError, SyntaxError):
        return None
    return mask if mask.shape == (size, size) else None
