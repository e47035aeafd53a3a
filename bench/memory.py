"""Peak memory of the API-side work on one image, per decoded megapixel, by input mode and
output format: the figures behind `optimizer/memory.py`'s admission weights.

    .venv/bin/python bench/memory.py [--megapixels 8] [--repeat 2]
    .venv/bin/python bench/memory.py --composition [--repeat 2]

`--composition` measures what composition adds: per output pixel, a small photo placed on a
4000x4000 canvas with a drop shadow, a background colour and decontaminated edges; per pixel of
a background image, a 16 MP picture covering a small photo's output. Each against the same
photo without composition, in fresh processes alike.

Each measurement runs in a fresh process: the image is made and encoded (PNG, or 16-bit PNG
for I;16), everything is imported and warmed up on a small image, the kernel's peak-RSS mark
is reset (`/proc/self/clear_refs`), then `prepare` + `finish` + the JSON rendering run once
with a synthetic mask; the peak (VmHWM) minus the resident size just before is the cost.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODES = ("RGB", "RGBA", "L", "I;16", "P")
FORMATS = ("PNG", "JPEG", "WEBP", "AVIF")
MODEL_SIZE = 320
WARM_UP_SIDE = 64
# Suggested weights get this margin over the largest measurement.
MARGIN = 1.1


def make_input(mode: str, width: int, height: int) -> bytes:
    """A photo-like image of `mode` (skimage's astronaut, resized), encoded as PNG."""
    import io

    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((width, height), Image.Resampling.BILINEAR)
    image = photo.quantize(256) if mode == "P" else photo.convert("L" if mode == "I;16" else mode)
    if mode == "RGBA":
        image.putalpha(Image.linear_gradient("L").resize((width, height)))
    elif mode == "I;16":
        image = Image.fromarray(np.asarray(image, dtype=np.uint16) * 257)  # uint16: mode I;16
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def ellipse_mask(size: int = MODEL_SIZE) -> np.ndarray:
    y, x = np.ogrid[:size, :size]
    inside = ((x - size / 2) / (size * 0.35)) ** 2 + ((y - size / 2) / (size * 0.45)) ** 2 <= 1
    return (inside * 255).astype(np.uint8)


def vm_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def measure_one(mode: str, fmt: str, megapixels: float) -> dict[str, float]:
    """In this (fresh) process: peak bytes per decoded pixel of one image."""
    from application.replies import json_reply
    from application.results import result_json
    from optimizer import finish, parse_options, prepare, read_source
    from optimizer.source import memory_needed

    side = round(math.sqrt(megapixels * 1e6))
    data = make_input(mode, side, side)
    options = parse_options({"format": fmt})
    small = make_input(mode, WARM_UP_SIDE, WARM_UP_SIDE)

    def run(payload: bytes) -> int:
        prepared = prepare(
            read_source(payload, options, max_input_pixels=10**9), options, model_size=MODEL_SIZE
        )
        result = finish(prepared, ellipse_mask(), options)
        reply = json_reply(result_json(result, options))
        return len(reply.body)

    run(small)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
    before = vm_kib("VmRSS")
    run(data)
    peak = vm_kib("VmHWM")
    pixels = side * side
    return {
        "bytes_per_pixel": (peak - before) * 1024 / pixels,
        "estimate_per_pixel": memory_needed(data, options, max_input_pixels=10**9) / pixels,
    }


def measure(mode: str, fmt: str, megapixels: float) -> dict[str, float]:
    command = [sys.executable, __file__, "--one", mode, fmt, str(megapixels)]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


COMPOSITION_CASES = {
    # case -> (options, background side): what composition adds on top of a plain request
    "plain": ({}, None),
    "canvas": (
        {"canvas": "4000x4000", "shadow": "drop", "bg_color": "#eeeeee", "edges": "decontaminate"},
        None,
    ),
    "background": ({}, 4000),
    "both": ({"canvas": "4000x4000", "shadow": "drop", "edges": "decontaminate"}, 4000),
}
COMPOSITION_PHOTO_SIDE = 500


def measure_composition_one(case: str, fmt: str) -> dict[str, float]:
    """In this (fresh) process: peak bytes of one request of `case`."""
    from optimizer import decode_background, finish, parse_options, prepare, read_source

    raw, background_side = COMPOSITION_CASES[case]
    data = make_input("RGB", COMPOSITION_PHOTO_SIDE, COMPOSITION_PHOTO_SIDE)
    background = make_input("RGB", background_side, background_side) if background_side else None
    options = parse_options({**raw, "format": fmt}, background_digest="bg" if background else None)

    def run(payload: bytes, backdrop: bytes | None) -> None:
        prepared = prepare(
            read_source(payload, options, max_input_pixels=10**9), options, model_size=MODEL_SIZE
        )
        picture = None
        if backdrop is not None:
            picture = decode_background(backdrop, max_input_pixels=10**9)
        finish(prepared, ellipse_mask(), options, picture)

    small = make_input("RGB", WARM_UP_SIDE, WARM_UP_SIDE)
    run(small, small if background else None)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = vm_kib("VmRSS")
    run(data, background)
    return {"bytes": (vm_kib("VmHWM") - before) * 1024}


def composition_report(repeat: int) -> None:
    from optimizer.memory import BACKGROUND_BYTES_PER_PIXEL, CANVAS_BYTES_PER_PIXEL

    @functools.cache
    def peak(case: str, fmt: str) -> float:
        command = [sys.executable, __file__, "--composition-one", case, fmt]
        runs = []
        for _ in range(repeat):
            out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1])["bytes"])
        return max(runs)

    pixels = {"canvas": 4000 * 4000, "background": 4000 * 4000}
    print(
        f"Composition's peak bytes per pixel over a plain {COMPOSITION_PHOTO_SIDE} px request, "
        f"worst of {repeat} runs (weights used for admission in brackets)\n"
    )
    print("| per pixel of | " + " | ".join(FORMATS) + " |\n|---|" + "---:|" * len(FORMATS))
    weights = {"canvas": CANVAS_BYTES_PER_PIXEL, "background": BACKGROUND_BYTES_PER_PIXEL}
    extras: dict[str, dict[str, float]] = {}
    for case in ("canvas", "background", "both"):
        cells = []
        for fmt in FORMATS:
            extra = peak(case, fmt) - peak("plain", fmt)
            extras.setdefault(case, {})[fmt] = extra
            if case == "both":  # a canvas and a background of its size: what the sum predicts
                predicted = pixels["canvas"] * CANVAS_BYTES_PER_PIXEL + pixels["background"] * (
                    BACKGROUND_BYTES_PER_PIXEL
                )
                cells.append(
                    f"{extra / pixels['canvas']:.1f} (weight {predicted / pixels['canvas']:.1f})"
                )
            else:
                cells.append(f"{extra / pixels[case]:.1f}")
        label = "canvas with a background of its size" if case == "both" else case
        weight = f" ({weights[case]})" if case in weights else ""
        print(f"| {label}{weight} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--one", nargs=3, metavar=("MODE", "FORMAT", "MP"), help=argparse.SUPPRESS)
    parser.add_argument("--composition", action="store_true", help="composition's weights")
    parser.add_argument("--composition-one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.composition_one:
        print(json.dumps(measure_composition_one(*args.composition_one)))
        return
    if args.composition:
        composition_report(args.repeat)
        return
    if args.one:
        mode, fmt, megapixels = args.one
        print(json.dumps(measure_one(mode, fmt, float(megapixels))))
        return
    print(
        f"Peak bytes per decoded pixel, {args.megapixels:g} MP inputs, "
        f"worst of {args.repeat} runs (estimate used for admission in brackets)\n"
    )
    print("| input mode | " + " | ".join(FORMATS) + " |")
    print("|---|" + "---:|" * len(FORMATS))
    suggested: dict[str, dict[str, float]] = {}
    for mode in MODES:
        cells = []
        for fmt in FORMATS:
            runs = [measure(mode, fmt, args.megapixels) for _ in range(args.repeat)]
            worst = max(run["bytes_per_pixel"] for run in runs)
            suggested.setdefault(mode, {})[fmt] = math.ceil(worst * MARGIN * 2) / 2
            cells.append(f"{worst:.1f} ({runs[0]['estimate_per_pixel']:.1f})")
        print(f"| {mode} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nSuggested BYTES_PER_PIXEL (worst × {MARGIN}, rounded up to 0.5):")
    print(json.dumps(suggested, indent=1))


if __name__ == "__main__":
    main()
