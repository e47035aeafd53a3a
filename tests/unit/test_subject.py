"""The subject's box read from the model's mask without scaling the whole mask up: the same
box (to a pixel) as scaling it to the photo and thresholding every pixel."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from optimizer.geometry import alpha_box
from optimizer.subject import subject_in_photo

LANCZOS = Image.Resampling.LANCZOS


def full_scale_box(mask: Image.Image, region: tuple[int, int, int, int]) -> tuple | None:
    width, height = region[2] - region[0], region[3] - region[1]
    found = alpha_box(np.asarray(mask.resize((width, height), LANCZOS)))
    if found is None:
        return None
    return found[0] + region[0], found[1] + region[1], found[2] + region[0], found[3] + region[1]


def noisy_blob(seed: int) -> Image.Image:
    """A soft blob somewhere on the 320 grid, over the faint noise u2net masks carry."""
    rng = np.random.default_rng(seed)
    blob = np.zeros((320, 320), np.uint8)
    left, top = rng.integers(10, 150, 2)
    width, height = rng.integers(20, 150, 2)
    blob[top : top + height, left : left + width] = 255
    blurred = Image.fromarray(blob).filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 4))))
    noise = rng.integers(0, 7, (320, 320))
    noise[rng.integers(0, 320, 5), rng.integers(0, 320, 5)] = 12  # stray grey pixels
    return Image.fromarray(np.clip(np.asarray(blurred) + noise, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    "region", [(0, 0, 4000, 3000), (0, 0, 640, 427), (500, 200, 2500, 1700), (0, 0, 300, 200)]
)
def test_the_box_matches_the_full_scaled_mask(seed: int, region: tuple) -> None:
    mask = noisy_blob(seed)
    found = subject_in_photo(mask, region)
    expected = full_scale_box(mask, region)
    assert found is not None and expected is not None
    assert all(abs(a - b) <= 1 for a, b in zip(found, expected, strict=True)), (found, expected)


def test_an_empty_mask_has_no_subject() -> None:
    assert subject_in_photo(Image.new("L", (320, 320), 6), (0, 0, 4000, 3000)) is None
    assert subject_in_photo(Image.new("L", (320, 320), 0), (0, 0, 100, 100)) is None


def test_a_mask_full_of_subject_is_the_whole_region() -> None:
    found = subject_in_photo(Image.new("L", (320, 320), 255), (100, 50, 4100, 3050))
    assert found == (100, 50, 4100, 3050)
