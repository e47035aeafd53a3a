"""How to honour a region of interest, measured (`bench/composition.py --roi`).

Two ways: run the model on the whole photo and clear its mask outside the region ("clear"),
or run the model on the region alone, which it then sees at a larger scale ("region", what
the service does). On composites whose true alpha is known: a subject (one of skimage's
photos, cut out by u2netp on its own) pasted with that alpha at 15 %, 30 % and 50 % of a
3000x2000 background (another photo, scaled); the region is the pasted box grown by 10 % of
its larger side. Reported: IoU of alpha > 127 against the truth inside the region, the mean
absolute alpha error there (0-255), and the CPU ms of model input + inference + scaling the
mask to the region.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from bench.composition import photo, session
from optimizer.pipeline import model_input

BACKGROUND_SIZE = (3000, 2000)
SUBJECTS = ("astronaut", "chelsea", "coffee")
BACKGROUNDS = ("rocket", "coffee", "chelsea")
SHARES = (0.15, 0.3, 0.5)
MARGIN = 0.1
MODEL_SIZE = 320
LANCZOS = Image.Resampling.LANCZOS


def compare() -> None:
    model = session()

    def mask_of(image: Image.Image, region: tuple[int, int, int, int] | None) -> Image.Image:
        masks = model.predict(model_input(image, MODEL_SIZE, region)[np.newaxis])
        return Image.fromarray(masks[0], "L")

    rows = []
    for subject_name in SUBJECTS:
        subject = photo(subject_name, _native_size(subject_name))
        truth = mask_of(subject, None).resize(subject.size, LANCZOS)
        for background_name in BACKGROUNDS:
            if background_name == subject_name:
                continue
            background = photo(background_name, BACKGROUND_SIZE)
            for share in SHARES:
                rows.append(
                    _one(mask_of, subject, truth, background, share)
                    | {"case": f"{subject_name} on {background_name}, {share:.0%}"}
                )
    print("| composite | clear: IoU | MAE | ms | region: IoU | MAE | ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['case']} | {row['clear'][0]:.3f} | {row['clear'][1]:.1f} | "
            f"{row['clear'][2]:.0f} | {row['region'][0]:.3f} | {row['region'][1]:.1f} | "
            f"{row['region'][2]:.0f} |"
        )
    for way in ("clear", "region"):
        print(
            f"\n{way}: median IoU {statistics.median(r[way][0] for r in rows):.3f}, "
            f"median MAE {statistics.median(r[way][1] for r in rows):.1f}, "
            f"median {statistics.median(r[way][2] for r in rows):.0f} ms",
            end="",
        )
    print()


def _native_size(name: str) -> tuple[int, int]:
    from skimage import data

    height, width = getattr(data, name)().shape[:2]
    return width, height


def _one(mask_of, subject, truth, background, share):  # type: ignore[no-untyped-def]
    width, height = background.size
    box_width = int(width * share)
    box_height = int(box_width * subject.height / subject.width)
    left = min(int(width * 0.55), width - box_width)
    top = min(int(height * 0.3), height - box_height)
    composite = background.copy()
    composite.paste(
        subject.resize((box_width, box_height), LANCZOS),
        (left, top),
        truth.resize((box_width, box_height), LANCZOS),
    )
    true_alpha = Image.new("L", background.size)
    true_alpha.paste(truth.resize((box_width, box_height), LANCZOS), (left, top))
    pad = int(MARGIN * max(box_width, box_height))
    region = (
        max(0, left - pad),
        max(0, top - pad),
        min(width, left + box_width + pad),
        min(height, top + box_height + pad),
    )
    size = (region[2] - region[0], region[3] - region[1])
    expected = np.asarray(true_alpha.crop(region), np.int16)

    def clear() -> Image.Image:
        return mask_of(composite, None).resize(background.size, LANCZOS).crop(region)

    def in_region() -> Image.Image:
        return mask_of(composite, region).resize(size, LANCZOS)

    return {"clear": _scored(clear, expected), "region": _scored(in_region, expected)}


def _scored(make: Callable[[], Image.Image], expected: np.ndarray) -> tuple[float, float, float]:
    started = time.process_time()
    found = np.asarray(make(), np.int16)
    spent = (time.process_time() - started) * 1000
    inside, truly = found > 127, expected > 127
    union = np.logical_or(inside, truly).sum()
    iou = np.logical_and(inside, truly).sum() / union if union else 1.0
    return float(iou), float(np.abs(found - expected).mean()), spent
