"""Whether the model found a subject at all, judged on its raw output.

rembg stretches every prediction to 0..255 on its own (`session.to_masks`), so a photo with
nothing to cut out still comes back as a full-contrast mask of noise. The judgement is made
before that, on the model's probabilities. Two shares of the model's input count: where the
model leans towards subject (raw value at or above `LEANING`) and where it is sure of it (at
or above `CONFIDENT`). A real subject has a sharp mask: the model is sure of most of what it
leans towards. On a texture it leans over wide areas and is sure of little; on a flat image
or a gradient it leans nowhere. The image's foreground **coverage** is the share the model is
sure of when that is at least `DECISIVE` of the share it leans towards, else 0; a subject was
found when the coverage reaches `MIN_COVERAGE`. The values were chosen by measurement
(docs/performance.md, "Finding no subject"; `bench/foreground.py`).

What crosses from the model service to the API service is one record per image: the uint8
mask and its coverage, as one structured array, so the batchable API keeps one array in and
one array out and the hop grows by four bytes an image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEANING = 0.5  # raw probability from which the model leans towards subject
CONFIDENT = 0.9  # raw probability from which it is sure
DECISIVE = 0.2  # least share of the leaning pixels that must be sure
MIN_COVERAGE = 0.001  # coverage from which a subject was found
MASK, COVERAGE = "mask", "coverage"


def records_dtype(size: int) -> np.dtype:
    """One image's segmentation: its `size`-square uint8 mask and its coverage."""
    return np.dtype([(MASK, np.uint8, (size, size)), (COVERAGE, np.float32)])


def coverage(predictions: np.ndarray) -> np.ndarray:
    """N x S x S raw probabilities -> each image's foreground coverage, 0..1."""
    pixels = predictions.shape[1] * predictions.shape[2]
    confident = np.count_nonzero(predictions >= CONFIDENT, axis=(1, 2))
    leaning = np.count_nonzero(predictions >= LEANING, axis=(1, 2))
    decisive = confident >= DECISIVE * leaning
    return np.where(decisive, confident / pixels, 0).astype(np.float32)


def subject_found(share: float) -> bool:
    """Whether an image with this foreground coverage shows a subject."""
    return share >= MIN_COVERAGE


def to_records(masks: np.ndarray, coverages: np.ndarray) -> np.ndarray:
    """N masks (N x S x S uint8) and their N coverages as N records (`records_dtype`)."""
    records = np.empty(len(masks), records_dtype(masks.shape[1]))
    records[MASK] = masks
    records[COVERAGE] = coverages
    return records


@dataclass(frozen=True)
class Segmentation:
    """One image's segmentation as the API side uses it."""

    mask: np.ndarray  # S x S uint8, stretched to 0..255 as rembg does
    coverage: float  # the foreground coverage, 0..1

    @property
    def subject_found(self) -> bool:
        return subject_found(self.coverage)

    @classmethod
    def from_record(cls, record: np.void) -> Segmentation:
        return cls(np.asarray(record[MASK]), float(record[COVERAGE]))


def segmentations(records: np.ndarray) -> list[Segmentation]:
    return [Segmentation.from_record(record) for record in records]
