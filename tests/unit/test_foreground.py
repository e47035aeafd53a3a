"""Whether the model found a subject: the coverage statistic on the raw output, the records
that carry it with the mask across the services, and the real model's verdicts."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from optimizer.pipeline import model_input
from segmentation import SegmentationSession, get_spec, segmentations
from segmentation.foreground import (
    CONFIDENT,
    DECISIVE,
    LEANING,
    MASK,
    MIN_COVERAGE,
    coverage,
    records_dtype,
    subject_found,
    to_records,
)
from tests import images

SIZE = 100
U2NETP = get_spec("u2netp")


def predictions(sure: int, unsure: int, low: float = 0.01) -> np.ndarray:
    """A SIZE x SIZE prediction: `sure` pixels at 0.99, then `unsure` at 0.6, the rest low."""
    flat = np.full(SIZE * SIZE, low, np.float32)
    flat[:sure] = 0.99
    flat[sure : sure + unsure] = 0.6
    return flat.reshape(1, SIZE, SIZE)


def test_a_sharp_subject_covers_the_share_the_model_is_sure_of() -> None:
    sharp = predictions(sure=2000, unsure=300)  # sure of 87 % of what it leans towards
    assert coverage(sharp)[0] == pytest.approx(0.2)
    assert subject_found(float(coverage(sharp)[0]))


def test_a_texture_the_model_hesitates_over_covers_nothing() -> None:
    # Sure of 10 % of what it leans towards: far from DECISIVE, however large the area.
    texture = predictions(sure=500, unsure=4500)
    assert DECISIVE > 500 / 5000
    assert coverage(texture)[0] == 0
    assert not subject_found(0.0)


def test_a_flat_image_where_the_model_leans_nowhere_covers_nothing() -> None:
    flat = predictions(sure=0, unsure=0, low=0.3)  # stretched by rembg, this is all noise
    assert LEANING > 0.3
    assert coverage(flat)[0] == 0


def test_decisiveness_is_judged_at_its_threshold() -> None:
    leaning = 1000
    sure = round(DECISIVE * leaning)
    assert coverage(predictions(sure + 1, leaning - sure - 1))[0] == pytest.approx(
        (sure + 1) / SIZE**2
    )
    assert coverage(predictions(sure - 1, leaning - sure + 1))[0] == 0


def test_a_speck_below_min_coverage_is_no_subject() -> None:
    speck = int(MIN_COVERAGE * SIZE * SIZE) - 1
    assert coverage(predictions(speck, 0))[0] > 0  # decisive, but too small
    assert not subject_found(float(coverage(predictions(speck, 0))[0]))
    assert subject_found(float(coverage(predictions(speck + 1, 0))[0]))


def test_each_image_of_a_batch_is_judged_on_its_own() -> None:
    batch = np.concatenate([predictions(2000, 0), predictions(0, 0), predictions(500, 4500)])
    assert coverage(batch).tolist() == pytest.approx([0.2, 0.0, 0.0])
    assert CONFIDENT > LEANING


# --- the records crossing the services -----------------------------------------------------


def records_of(count: int, size: int = 320) -> np.ndarray:
    rng = np.random.default_rng(count)
    masks = rng.integers(0, 256, (count, size, size), dtype=np.uint8)
    return to_records(masks, np.linspace(0, 0.5, count, dtype=np.float32))


def test_records_carry_each_mask_and_coverage() -> None:
    masks = np.stack([np.full((4, 4), value, np.uint8) for value in (0, 128, 255)])
    records = to_records(masks, np.array([0.0, 0.25, 0.5], np.float32))
    assert records.dtype == records_dtype(4)
    found = segmentations(records)
    assert [int(one.mask[0, 0]) for one in found] == [0, 128, 255]
    assert [one.coverage for one in found] == [0.0, 0.25, 0.5]
    assert [one.subject_found for one in found] == [False, True, True]
    assert found[1].mask.shape == (4, 4) and found[1].mask.dtype == np.uint8


def test_records_cross_the_hop_as_one_buffer_of_masks_and_four_bytes_an_image() -> None:
    """BentoML sends arrays between services with pickle protocol 5 and out-of-band buffers:
    the records are one buffer, the masks' bytes plus a float32 each."""
    records = records_of(3)
    buffers: list[pickle.PickleBuffer] = []
    header = pickle.dumps(records, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1
    assert buffers[0].raw().nbytes == 3 * (320 * 320 + 4)
    assert len(header) < 500
    back = pickle.loads(header, buffers=buffers)
    assert np.array_equal(back, records)


def test_records_batch_and_split_as_bentomls_batcher_does() -> None:
    from bentoml._internal.runner.container import AutoContainer

    parts = [records_of(1), records_of(2), records_of(1)]
    batch, indices = AutoContainer.batches_to_batch(parts, 0)
    assert batch.dtype == records_dtype(320) and len(batch) == 4
    back = AutoContainer.batch_to_batches(batch, indices, 0)
    for original, returned in zip(parts, back, strict=True):
        assert np.array_equal(original, returned)


# --- the real model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def session(stored_model_path: Path) -> SegmentationSession:
    return SegmentationSession(stored_model_path, U2NETP, threads=2)


def model_batch(*pictures: Image.Image) -> np.ndarray:
    return np.stack([model_input(picture, U2NETP.input_size) for picture in pictures])


@pytest.mark.slow
def test_the_model_finds_a_subject_in_photos_and_none_in_flat_images(
    session: SegmentationSession,
) -> None:
    photos = [images.photo_image(name) for name in images.PHOTO_NAMES]
    flat = [Image.new("RGB", (600, 400), colour) for colour in ("white", "grey", "skyblue")]
    found = segmentations(session.segment(model_batch(*photos, *flat)))
    assert [one.subject_found for one in found] == [True] * len(photos) + [False] * len(flat)
    # rembg's stretched mask of a flat image is not empty: only the coverage tells
    assert all(one.mask.max() > 0 for one in found[len(photos) :])


@pytest.mark.slow
def test_masks_are_the_records_masks_and_a_batch_judges_each_image_alone(
    session: SegmentationSession,
) -> None:
    batch = model_batch(images.photo_image("coffee"), Image.new("RGB", (300, 200), "white"))
    records = session.segment(batch)
    assert np.array_equal(session.predict(batch), records[MASK])
    for index in range(len(batch)):
        alone = session.segment(batch[index : index + 1])
        assert alone[0]["coverage"] == records[index]["coverage"]
