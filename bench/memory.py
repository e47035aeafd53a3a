"""Peak memory of the API-side work on one image, per decoded megapixel, by input mode and
output format: the figures behind `optimizer/memory.py`'s admission weights. `--composition`:
what a canvas and a background image add (the cases: docs/operations.md, "Memory").

    .venv/bin/python bench/memory.py [--megapixels 8] [--repeat 2]
    .venv/bin/python bench/memory.py --composition [--repeat 2]

Each measurement runs in a fresh process: the image is made and encoded (PNG, or 16-bit PNG
for I;16), everything is imported and warmed up on a small image, the kernel's peak-RSS mark
is reset (`/proc/self/clear_refs`), then `prepare` + `finish` (+ the JSON rendering, without
composition) run once with a synthetic mask; the peak (VmHWM) minus the resident size just
before is the cost.
"""

from __future__ import annotations

import argparse
import functools
import gc
import io
import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODES = ("RGB", "RGBA", "L", "I;16", "P")
FORMATS = ("PNG", "JPEG", "WEBP", "AVIF")
MODEL_SIZE, WARM_UP_SIDE, NO_LIMIT = 320, 64, 10**9
# Suggested weights get this margin over the largest measurement.
MARGIN = 1.1
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


def make_input(mode: str, width: int, height: int) -> bytes:
    """A photo-like image of `mode` (skimage's astronaut, resized), encoded as PNG."""
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


def peak_bytes(run: Callable[[bool], object]) -> int:
    """In this (fresh) process: how far the peak RSS rises over `run(True)`, after `run(False)`
    has imported and warmed up everything on a small image."""
    run(False)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
    before = vm_kib("VmRSS")
    run(True)
    return (vm_kib("VmHWM") - before) * 1024


def plain(mode: str, fmt: str, megapixels: str) -> dict[str, float]:
    """Peak bytes per decoded pixel of one request, and the admission estimate's."""
    from application.replies import json_reply
    from application.results import result_json
    from optimizer import finish, parse_options, prepare, read_source
    from optimizer.source import memory_needed

    side = round(math.sqrt(float(megapixels) * 1e6))
    data, small = make_input(mode, side, side), make_input(mode, WARM_UP_SIDE, WARM_UP_SIDE)
    options = parse_options({"format": fmt})

    def run(real: bool) -> None:
        source = read_source(data if real else small, options, max_input_pixels=NO_LIMIT)
        result = finish(prepare(source, options, model_size=MODEL_SIZE), ellipse_mask(), options)
        json_reply(result_json(result, options))

    peak, estimate = peak_bytes(run), memory_needed(data, options, max_input_pixels=NO_LIMIT)
    return {"bytes_per_pixel": peak / side**2, "estimate_per_pixel": estimate / side**2}


def composed(case: str, fmt: str) -> dict[str, float]:
    """Peak bytes of one request of a composition case."""
    from optimizer import decode_background, finish, parse_options, prepare, read_source

    raw, background_side = COMPOSITION_CASES[case]
    photo = make_input("RGB", COMPOSITION_PHOTO_SIDE, COMPOSITION_PHOTO_SIDE)
    small = make_input("RGB", WARM_UP_SIDE, WARM_UP_SIDE)
    background = make_input("RGB", background_side, background_side) if background_side else None
    options = parse_options({**raw, "format": fmt}, background_digest="bg" if background else None)

    def run(real: bool) -> None:
        source = read_source(photo if real else small, options, max_input_pixels=NO_LIMIT)
        prepared = prepare(source, options, model_size=MODEL_SIZE)
        picture = None
        if background:
            picture = decode_background(background if real else small, max_input_pixels=NO_LIMIT)
        finish(prepared, ellipse_mask(), options, picture)

    return {"bytes": peak_bytes(run)}


def in_child(*args: str) -> dict[str, float]:
    """One measurement in a fresh process: this script with --child."""
    command = [sys.executable, __file__, "--child", *args]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def composition_report(repeat: int) -> None:
    from optimizer.memory import BACKGROUND_BYTES_PER_PIXEL, CANVAS_BYTES_PER_PIXEL

    @functools.cache
    def peak(case: str, fmt: str) -> float:
        return max(in_child("composed", case, fmt)["bytes"] for _ in range(repeat))

    print(
        f"Composition's peak bytes per pixel over a plain {COMPOSITION_PHOTO_SIDE} px request, "
        f"worst of {repeat} runs (weights used for admission in brackets)\n"
    )
    print("| per pixel of | " + " | ".join(FORMATS) + " |\n|---|" + "---:|" * len(FORMATS))
    weights = {"canvas": CANVAS_BYTES_PER_PIXEL, "background": BACKGROUND_BYTES_PER_PIXEL}
    pixels = 4000 * 4000  # of the canvas, and of the background
    for case in ("canvas", "background", "both"):
        cells = [f"{(peak(case, fmt) - peak('plain', fmt)) / pixels:.1f}" for fmt in FORMATS]
        label = f"{case} ({weights.get(case)})"
        if case == "both":  # a canvas and a background of its size: what the sum predicts
            cells = [f"{cell} (weight {sum(weights.values()):.1f})" for cell in cells]
            label = "canvas with a background of its size"
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--composition", action="store_true", help="composition's weights")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        print(json.dumps(plain(*rest) if kind == "plain" else composed(*rest)))
        return
    if args.composition:
        composition_report(args.repeat)
        return
    print(
        f"Peak bytes per decoded pixel, {args.megapixels:g} MP inputs, "
        f"worst of {args.repeat} runs (estimate used for admission in brackets)\n"
    )
    print("| input mode | " + " | ".join(FORMATS) + " |\n|---|" + "---:|" * len(FORMATS))
    suggested: dict[str, dict[str, float]] = {}
    for mode in MODES:
        cells = []
        for fmt in FORMATS:
            runs = [in_child("plain", mode, fmt, str(args.megapixels)) for _ in range(args.repeat)]
            worst = max(run["bytes_per_pixel"] for run in runs)
            suggested.setdefault(mode, {})[fmt] = math.ceil(worst * MARGIN * 2) / 2
            cells.append(f"{worst:.1f} ({runs[0]['estimate_per_pixel']:.1f})")
        print(f"| {mode} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nSuggested BYTES_PER_PIXEL (worst × {MARGIN}, rounded up to 0.5):")
    print(json.dumps(suggested, indent=1))


if __name__ == "__main__":
    main()
