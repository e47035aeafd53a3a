"""Encoder effort on a real 1 MP cut-out: time and bytes per setting, as a Markdown table.

    .venv/bin/python bench/encoders.py [--repeat 3]

The constants in optimizer/encode.py were chosen from this table (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import timeit
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bentoml  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from optimizer.compose import cutout  # noqa: E402
from optimizer.pipeline import model_input  # noqa: E402
from optimizer.png import encode_png  # noqa: E402
from segmentation import SegmentationSession, get_spec  # noqa: E402
from segmentation.catalog import STORE_MODEL_FILE  # noqa: E402

PILLOW_SETTINGS: list[tuple[str, str, dict]] = [
    ("PNG", "compress_level=1", {"compress_level": 1}),
    ("PNG", "compress_level=2", {"compress_level": 2}),
    ("PNG", "compress_level=3", {"compress_level": 3}),
    ("PNG", "compress_level=6 (Pillow default)", {"compress_level": 6}),
    ("PNG", "compress_level=9", {"compress_level": 9}),
    ("PNG", "compress_level=1, Z_RLE", {"compress_level": 1, "compress_type": zlib.Z_RLE}),
    ("PNG", "compress_level=2, Z_RLE", {"compress_level": 2, "compress_type": zlib.Z_RLE}),
    ("PNG", "compress_level=6, Z_RLE", {"compress_level": 6, "compress_type": zlib.Z_RLE}),
    ("WEBP", "q80 method=0", {"quality": 80, "method": 0}),
    ("WEBP", "q80 method=2", {"quality": 80, "method": 2}),
    ("WEBP", "q80 method=4 (default)", {"quality": 80, "method": 4}),
    ("WEBP", "q80 method=6", {"quality": 80, "method": 6}),
    ("AVIF", "q80 speed=10", {"quality": 80, "speed": 10}),
    ("AVIF", "q80 speed=8", {"quality": 80, "speed": 8}),
    ("AVIF", "q80 speed=6 (default)", {"quality": 80, "speed": 6}),
    (
        "JPEG",
        "q80 progressive optimize 4:2:0",
        {"quality": 80, "progressive": True, "optimize": True, "subsampling": "4:2:0"},
    ),
]


def one_megapixel_cutout() -> Image.Image:
    photo = Image.fromarray(data.coffee()).resize((1224, 816), Image.Resampling.LANCZOS)
    stored = bentoml.models.get("u2netp")
    session = SegmentationSession(stored.path_of(STORE_MODEL_FILE), get_spec("u2netp"))
    mask = session.predict(model_input(photo, 320)[None])[0]
    alpha = Image.fromarray(mask, "L").resize(photo.size, Image.Resampling.LANCZOS)
    return cutout(photo, alpha)


def pillow_encoded(fmt: str, params: dict, image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    source = image.convert("RGB") if fmt == "JPEG" else image
    source.save(buffer, fmt, **params)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    image = one_megapixel_cutout()
    print(f"Cut-out: {image.width}x{image.height} RGBA, median of {args.repeat} runs\n")
    print("| format | setting | ms | bytes |\n|---|---|---:|---:|")
    encoders: list[tuple[str, str, Callable[[Image.Image], bytes]]] = [
        (fmt, label, partial(pillow_encoded, fmt, params)) for fmt, label, params in PILLOW_SETTINGS
    ]
    # The service's own PNG writer: it uses it for cut-outs of JPEGs up to q90; this cut-out
    # comes from a lossless resize, for which the service keeps Pillow's encoder.
    encoders.append(("PNG", "Up filter + ISA-L level 2 (optimizer/png.py)", encode_png))
    for fmt, label, encode in encoders:
        size = len(encode(image))
        runs = timeit.repeat(partial(encode, image), number=1, repeat=args.repeat)
        print(f"| {fmt} | {label} | {statistics.median(runs) * 1000:.0f} | {size:,} |")


if __name__ == "__main__":
    main()
