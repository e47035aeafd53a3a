"""remove.bg's `format=zip`: the result's colours as `color.jpg` (edge colours corrected, as
`channels=rgba` has them) and its matte as `alpha.png`, both at the output size."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np

from optimizer import Options, OutputFormat, PreparedImage
from optimizer.encode import encode
from optimizer.geometry import Bounds, Margin, subject_bounds
from optimizer.pipeline import shape_layers

ZIP_COLOR, ZIP_ALPHA = "color.jpg", "alpha.png"
ZIP_JPEG_QUALITY = 90


@dataclass(frozen=True)
class ZipResult:
    data: bytes
    size: tuple[int, int]
    foreground: Bounds | None


def zip_result(prepared: PreparedImage, mask: np.ndarray, options: Options) -> ZipResult:
    color, alpha = shape_layers(prepared, mask, options)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            ZIP_COLOR,
            encode(color.convert("RGB"), OutputFormat.JPEG, ZIP_JPEG_QUALITY, lossless_png=False),
        )
        archive.writestr(ZIP_ALPHA, encode(alpha, OutputFormat.PNG, 100, lossless_png=True))
    return ZipResult(buffer.getvalue(), color.size, subject_bounds(alpha, Margin()))
