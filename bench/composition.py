"""Composition's CPU cost, step by step, on a 1 MP and a 12 MP photo; the default request's
`finish` against another revision's; and how the region of interest was decided.

    .venv/bin/python bench/composition.py [--repeat 7] [--baseline REV] [--roi]

Photos: skimage's coffee, Lanczos-resized to 1224x816 and 4240x2832, JPEG q90, cut out with
the real u2netp mask (the model from BentoML's store). Each figure is the median CPU time
(`time.process_time`) of `repeat` runs in this process, after one warm-up; the process tunes
glibc as the API worker does. `--baseline REV` also times the default request's `finish` of
revision REV (its `optimizer/` and `contract/`, from git) in worker processes alternating
with this tree's, so drift in the host's load hits both alike. `--roi` compares the two ways
of honouring a region of interest on composites whose true alpha is known.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

SIZES = {"1 MP": (1224, 816), "12 MP": (4240, 2832)}
MODEL_SIZE = 320
LANCZOS = Image.Resampling.LANCZOS
# name, options, background image: None, "canvas" (the output's size) or "other" (covered)
STEPS: list[tuple[str, dict[str, str], str | None]] = [
    ("default (no composition)", {}, None),
    ("crop", {"crop": "true"}, None),
    ("scale=90% (placed on the photo's size)", {"scale": "90%"}, None),
    ("canvas=2000x2000", {"canvas": "2000x2000"}, None),
    ("roi=10% 10% 90% 90%", {"roi": "10% 10% 90% 90%"}, None),
    ("edges=decontaminate", {"edges": "decontaminate"}, None),
    ("shadow=drop (transparent)", {"shadow": "drop"}, None),
    ("shadow=drop, bg_color=white", {"shadow": "drop", "bg_color": "white"}, None),
    ("bg_image of the output's size", {}, "canvas"),
    ("bg_image scaled to cover", {}, "other"),
    ("preset=product (1000x1000 JPEG)", {"preset": "product"}, None),
]


def cpu_ms(action: Callable[[], object], repeat: int) -> float:
    action()
    times = []
    for _ in range(repeat):
        started = time.process_time()
        action()
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times)


def encoded(image: Image.Image, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=90)
    return buffer.getvalue()


def photo(name: str, size: tuple[int, int]) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB").resize(size, LANCZOS)


def session():  # type: ignore[no-untyped-def]
    import bentoml

    from segmentation import SegmentationSession, get_spec
    from segmentation.catalog import STORE_MODEL_FILE

    stored = bentoml.models.get("u2netp")
    return SegmentationSession(stored.path_of(STORE_MODEL_FILE), get_spec("u2netp"), threads=2)


def steps(repeat: int) -> None:
    from cache import input_digest
    from optimizer import decode_background, parse_options, prepare, read_source
    from optimizer.edges import decontaminate
    from optimizer.encode import encode
    from optimizer.pipeline import make_picture, model_input

    model = session()
    columns: dict[str, dict[str, float]] = {}
    for label, size in SIZES.items():
        data = encoded(photo("coffee", size))
        plain = prepare(
            read_source(data, parse_options({}), max_input_pixels=10**9),
            parse_options({}),
            model_size=MODEL_SIZE,
        )
        mask = model.predict(plain.model_input[np.newaxis])[0]
        others = {
            "canvas": encoded(photo("rocket", size)),
            "other": encoded(photo("rocket", (size[0] * 3 // 2, size[1] * 2))),
        }
        column = columns.setdefault(label, {})
        for name, raw, background in STEPS:
            extra = others[background] if background else None
            digest = input_digest(extra) if extra else None
            options = parse_options(raw, background_digest=digest)
            prepared = prepare(
                read_source(data, options, max_input_pixels=10**9), options, model_size=None
            )
            image = None
            if extra is not None:
                image = decode_background(extra, max_input_pixels=10**9, canvas=size)
            compose = partial(make_picture, prepared, mask, options, image)
            picture = compose()[0]
            column[name] = cpu_ms(compose, repeat)
            column[f"{name} / encode"] = cpu_ms(
                partial(
                    encode,
                    picture,
                    options.format,
                    options.quality,
                    options.lossless_png,
                    source_jpeg_quality=prepared.source_jpeg_quality,
                ),
                repeat,
            )
        column["decode_background (JPEG, the output's size)"] = cpu_ms(
            partial(decode_background, others["canvas"], max_input_pixels=10**9), repeat
        )
        alpha = Image.fromarray(mask).resize(size, LANCZOS)
        column["decontaminate alone"] = cpu_ms(partial(decontaminate, plain.image, alpha), repeat)
        region = (size[0] // 10, size[1] // 10, size[0] * 9 // 10, size[1] * 9 // 10)
        column["model input (prepare), whole photo"] = cpu_ms(
            partial(model_input, plain.image, MODEL_SIZE), repeat
        )
        column["model input (prepare), roi"] = cpu_ms(
            partial(model_input, plain.image, MODEL_SIZE, region), repeat
        )
    print(f"CPU ms, median of {repeat}: `finish` = compose (every step before encoding) + encode\n")
    header = " | ".join(f"{label} compose | {label} encode" for label in SIZES)
    print(f"| options | {header} | compose over default, " + " | ".join(SIZES) + " |")
    print("|---|" + "---:|" * (3 * len(SIZES)))
    base = {label: columns[label][STEPS[0][0]] for label in SIZES}
    for name, _, _ in STEPS:
        cells = [
            f"{columns[label][name]:.1f} | {columns[label][f'{name} / encode']:.1f}"
            for label in SIZES
        ]
        deltas = [f"{columns[label][name] - base[label]:+.1f}" for label in SIZES]
        print(f"| {name} | " + " | ".join(cells + deltas) + " |")
    print("\n| other step | " + " | ".join(SIZES) + " |\n|---|" + "---:|" * len(SIZES))
    for name in columns["1 MP"]:
        if not any(name.startswith(step[0]) for step in STEPS):
            print(
                f"| {name} | " + " | ".join(f"{columns[label][name]:.1f}" for label in SIZES) + " |"
            )


def worker(root: str, repeat: int) -> None:
    """In a fresh process: the default request's finish CPU ms of the tree at `root`."""
    sys.path.insert(0, root)
    from optimizer import finish, parse_options, prepare, read_source

    ellipse = np.zeros((MODEL_SIZE, MODEL_SIZE), np.uint8)
    y, x = np.ogrid[:MODEL_SIZE, :MODEL_SIZE]
    ellipse[((x - 160) / 110) ** 2 + ((y - 160) / 140) ** 2 <= 1] = 255
    figures = {}
    for label, size in SIZES.items():
        options = parse_options({})
        data = encoded(photo("coffee", size))
        prepared = prepare(
            read_source(data, options, max_input_pixels=10**9), options, model_size=None
        )
        figures[label] = cpu_ms(partial(finish, prepared, ellipse, options), repeat)
    print(json.dumps(figures))


def before_after(revision: str, repeat: int, rounds: int = 4) -> None:
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(
            ["git", "archive", revision, "optimizer", "contract"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as files:
            files.extractall(folder, filter="data")
        runs: dict[str, list[dict[str, float]]] = {revision: [], "this tree": []}
        for round_index in range(rounds):
            order = [(revision, folder), ("this tree", str(ROOT))]
            for name, root in order if round_index % 2 == 0 else order[::-1]:
                command = [sys.executable, __file__, "--worker", root, "--repeat", str(repeat)]
                out = subprocess.run(command, check=True, capture_output=True, text=True)
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"\nDefault request's finish, CPU ms (median of {rounds} worker runs, alternating)\n")
    print("| revision | " + " | ".join(SIZES) + " |\n|---|" + "---:|" * len(SIZES))
    medians = {
        name: {label: statistics.median(run[label] for run in found) for label in SIZES}
        for name, found in runs.items()
    }
    for name, figures in medians.items():
        print(f"| {name} | " + " | ".join(f"{figures[label]:.1f}" for label in SIZES) + " |")
    ratio = [medians["this tree"][label] / medians[revision][label] for label in SIZES]
    print("| this tree / " + revision + " | " + " | ".join(f"{r:.2f}" for r in ratio) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--baseline", help="a git revision to compare the default finish with")
    parser.add_argument("--roi", action="store_true", help="the region-of-interest measurement")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from operations.resources import return_freed_memory_promptly

    return_freed_memory_promptly()
    if args.worker:
        worker(args.worker, args.repeat)
    elif args.roi:
        from bench.roi import compare

        compare()
    else:
        steps(args.repeat)
        if args.baseline:
            before_after(args.baseline, args.repeat)
