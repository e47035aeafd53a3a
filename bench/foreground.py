"""When has the model found no subject? Its raw output on photos with and without one.

    .venv/bin/python bench/foreground.py

u2netp (from BentoML's store) runs on each image exactly as the service runs it (the model
input of `optimizer.pipeline.model_input`, `SegmentationSession.probabilities`), and the table
gives, per image, statistics of the raw output: its peak, the share of the model's input the
model leans towards (p >= `LEANING`) and is sure of (p >= `CONFIDENT`), the second over the
first (decisiveness), and the service's foreground coverage
(`segmentation.foreground.coverage`), with its verdict at `MIN_COVERAGE`.

Images (all from skimage or made in code; nothing is downloaded):
- subject: skimage's photos and graphics with a subject, and coffee, chelsea and astronaut
  pasted at 5 %, 2 %, 1 % and 0.5 % of the area of a 1200x800 white, grass or brick backdrop;
- degraded: six of those photos blurred (2 and 6 px), as JPEG at quality 10, and darkened
  to a quarter; shown with their verdicts, left out of the choice;
- none: flat colours, gradients, noise, blurred noise, and skimage's brick, grass and gravel
  textures (whole, turned, and six crops of a quarter of their area, zoomed 2x);
- ambiguous, shown but left out of the choice: the textures zoomed 3x and 4x (one brick, or
  mortar lines like a ladder, then fill the frame), the lunar surface and its zoomed crops
  (craters read as objects), a page of text, a deep-field star image.

For each statistic the summary prints the highest value among images without a subject, the
lowest among subjects of at least 1 % of the image, and their ratio (the wider, the safer),
and the geometric mean of the two (the threshold with the same margin on both sides).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import io  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from bench.composition import session  # noqa: E402
from optimizer.pipeline import model_input  # noqa: E402
from segmentation.foreground import (  # noqa: E402
    CONFIDENT,
    DECISIVE,
    LEANING,
    MIN_COVERAGE,
    coverage,
    subject_found,
)

SUBJECT, DEGRADED, NONE, AMBIGUOUS = "subject", "degraded", "none", "ambiguous"
SUBJECT_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "horse", "clock")
SUBJECT_GRAPHICS = ("coins", "logo", "colorwheel")
DEGRADED_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "horse")
TEXTURES = ("brick", "grass", "gravel")
PASTED = ("coffee", "chelsea", "astronaut")
SHARES = (0.05, 0.02, 0.01, 0.005)
SMALLEST_COUNTED_SHARE = 0.01  # subjects smaller than this are shown, not used for the choice
BACKDROP = (1200, 800)
MODEL_SIZE = 320
Case = tuple[str, str, Image.Image, float]  # name, group, image, subject's share (1: whole)


def skimage_image(name: str) -> Image.Image:
    from skimage import data

    array = getattr(data, name)()
    if array.dtype == bool:  # the horse: a black silhouette on white
        array = np.where(array, 0, 255).astype(np.uint8)
    image = Image.fromarray(array)
    if image.mode == "RGBA":  # the logo: on white, as a photo of it would be
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        return flat
    return image.convert("RGB")


def pasted(backdrop: Image.Image, subject: Image.Image, share: float) -> Image.Image:
    """`subject` scaled to `share` of the backdrop's area and pasted in its middle."""
    width, height = backdrop.size
    scale = (share * width * height / (subject.width * subject.height)) ** 0.5
    small = subject.resize((round(subject.width * scale), round(subject.height * scale)))
    picture = backdrop.copy()
    picture.paste(small, ((width - small.width) // 2, (height - small.height) // 2))
    return picture


def subjects() -> Iterator[Case]:
    for name in SUBJECT_PHOTOS + SUBJECT_GRAPHICS:
        yield name, SUBJECT, skimage_image(name), 1.0
    backdrops = {
        "white": Image.new("RGB", BACKDROP, "white"),
        "grass": skimage_image("grass").resize(BACKDROP),
        "brick": skimage_image("brick").resize(BACKDROP),
    }
    for share in SHARES:
        for name, backdrop in backdrops.items():
            for subject in PASTED:
                picture = pasted(backdrop, skimage_image(subject), share)
                yield f"{subject} at {share:.1%} on {name}", SUBJECT, picture, share


def degraded() -> Iterator[Case]:
    for name in DEGRADED_PHOTOS:
        photo = skimage_image(name)
        for radius_px in (2, 6):
            yield f"{name} blurred {radius_px} px", DEGRADED, photo.filter(blur(radius_px)), 1.0
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", quality=10)
        yield f"{name} JPEG q10", DEGRADED, Image.open(buffer).convert("RGB"), 1.0
        yield f"{name} darkened", DEGRADED, Image.eval(photo, lambda value: value // 4), 1.0


def without_subject() -> Iterator[Case]:
    for colour in ("white", "grey", "black", "red", "skyblue"):
        yield f"flat {colour}", NONE, Image.new("RGB", (600, 400), colour), 0.0
    ramp = np.linspace(0, 255, 600, dtype=np.uint8)
    yield "gradient, left to right", NONE, grey(np.tile(ramp, (400, 1))), 0.0
    yield "gradient, top to bottom", NONE, grey(np.tile(ramp[:400, np.newaxis], (1, 600))), 0.0
    rows, columns = np.mgrid[0:400, 0:600]
    radius = np.hypot(columns - 300, rows - 200)
    yield "gradient, radial", NONE, grey((255 * radius / radius.max()).astype(np.uint8)), 0.0
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (400, 600, 3), dtype=np.uint8))
    yield "noise", NONE, noise, 0.0
    for radius_px in (2, 8, 32):
        yield f"noise blurred {radius_px} px", NONE, noise.filter(blur(radius_px)), 0.0
    for name in TEXTURES:
        texture = skimage_image(name)
        yield name, NONE, texture, 0.0
        yield f"{name}, turned", NONE, texture.rotate(90), 0.0
        yield from zoomed(name, texture, 2, 6, rng, NONE)


def zoomed(
    name: str, image: Image.Image, zoom: float, count: int, rng: np.random.Generator, group: str
) -> Iterator[Case]:
    """`count` crops of `image` at random places, each 1/zoom of its side, zoomed back."""
    side = round(image.width / zoom)
    for index, (left, top) in enumerate(rng.integers(0, image.width - side, (count, 2))):
        crop = image.crop((left, top, left + side, top + side)).resize(image.size)
        yield f"{name}, zoomed {zoom}x, crop {index + 1}", group, crop, 0.0


def ambiguous() -> Iterator[Case]:
    rng = np.random.default_rng(1)
    for name in TEXTURES:
        for zoom in (3, 4):
            yield from zoomed(name, skimage_image(name), zoom, 4, rng, AMBIGUOUS)
    moon = skimage_image("moon")
    yield "moon", AMBIGUOUS, moon, 0.0
    yield from zoomed("moon", moon, 2, 4, rng, AMBIGUOUS)
    for name in ("page", "text", "hubble_deep_field"):
        yield name, AMBIGUOUS, skimage_image(name), 0.0


def grey(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array).convert("RGB")


def blur(radius: int) -> ImageFilter.GaussianBlur:
    return ImageFilter.GaussianBlur(radius)


def statistics(probabilities: np.ndarray) -> dict[str, float]:
    leaning = float((probabilities >= LEANING).mean())
    confident = float((probabilities >= CONFIDENT).mean())
    return {
        "peak": float(probabilities.max()),
        f"p >= {LEANING}": leaning,
        f"p >= {CONFIDENT}": confident,
        "decisiveness": confident / leaning if leaning else 0.0,
        "coverage": float(coverage(probabilities[np.newaxis])[0]),
    }


Row = tuple[str, str, float, dict[str, float]]


def main() -> None:
    model = session()
    rows: list[Row] = []
    cases = [*subjects(), *degraded(), *without_subject(), *ambiguous()]
    for name, group, image, share in cases:
        probabilities = model.probabilities(model_input(image, MODEL_SIZE)[np.newaxis])[0]
        rows.append((name, group, share, statistics(probabilities)))
    names = list(rows[0][3])
    print(f"| image | group | {' | '.join(names)} | subject found |")
    print(f"|---|---|{'---:|' * len(names)}---|")
    for name, group, _, values in rows:
        cells = " | ".join(f"{values[stat]:.5f}" for stat in names)
        print(f"| {name} | {group} | {cells} | {subject_found(values['coverage'])} |")
    print()
    summary(rows, names)
    verdicts(rows)


def counted_subject(group: str, share: float) -> bool:
    return group == SUBJECT and share >= SMALLEST_COUNTED_SHARE


def summary(rows: list[Row], names: list[str]) -> None:
    print("| statistic | highest without a subject | lowest subject (>= 1 %) | ratio | midpoint |")
    print("|---|---:|---:|---:|---:|")
    for stat in names:
        highest = max(values[stat] for _, group, _, values in rows if group == NONE)
        lowest = min(
            values[stat] for _, group, share, values in rows if counted_subject(group, share)
        )
        ratio = f"{lowest / highest:.1f}" if highest > 0 else "inf"
        midpoint = (lowest * highest) ** 0.5
        print(f"| {stat} | {highest:.5f} | {lowest:.5f} | {ratio} | {midpoint:.5f} |")


def verdicts(rows: list[Row]) -> None:
    print(f"\nVerdicts at DECISIVE {DECISIVE}, MIN_COVERAGE {MIN_COVERAGE}:")
    for label, chosen, expected in (
        ("subjects of at least 1 %", lambda g, s: counted_subject(g, s), True),
        ("subjects of 0.5 %", lambda g, s: g == SUBJECT and s < SMALLEST_COUNTED_SHARE, True),
        ("degraded subjects", lambda g, s: g == DEGRADED, True),
        ("images without a subject", lambda g, s: g == NONE, False),
        ("ambiguous images", lambda g, s: g == AMBIGUOUS, False),
    ):
        picked = [(name, values) for name, group, share, values in rows if chosen(group, share)]
        found = [name for name, values in picked if subject_found(values["coverage"])]
        if expected:
            missed = [name for name, _ in picked if name not in found]
            print(f"- {label}: found in {len(found)} of {len(picked)}; missed: {missed}")
        else:
            print(f"- {label}: found in {len(found)} of {len(picked)}: {found}")


if __name__ == "__main__":
    main()
