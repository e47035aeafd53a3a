"""Composition end to end in process with the real u2netp model: prepare, the model's own mask,
finish (the service's path without HTTP)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from optimizer import decode_background, finish, parse_options, prepare, read_source
from segmentation import SegmentationSession, get_spec
from tests import images

pytestmark = pytest.mark.slow

MAX_PIXELS = 50_000_000
LANCZOS = Image.Resampling.LANCZOS


@pytest.fixture(scope="module")
def session(stored_model_path: Path) -> SegmentationSession:
    return SegmentationSession(stored_model_path, get_spec("u2netp"), threads=2)


def through_the_model(
    session: SegmentationSession,
    data: bytes,
    raw: dict,
    background: bytes | None = None,
) -> tuple[Image.Image, tuple[int, int, int, int] | None]:
    options = parse_options(raw, background_digest=None if background is None else "bg")
    prepared = prepare(
        read_source(data, options, max_input_pixels=MAX_PIXELS), options, model_size=320
    )
    mask = session.predict(prepared.model_input[np.newaxis])[0]
    decoded = None
    if background is not None:
        decoded = decode_background(background, max_input_pixels=MAX_PIXELS, canvas=options.canvas)
    result = finish(prepared, mask, options, decoded)
    image = Image.open(io.BytesIO(result.data))
    image.load()
    return image, result.foreground


def test_the_product_preset_gives_a_white_square_filled_to_90_percent(
    session: SegmentationSession,
) -> None:
    image, box = through_the_model(session, images.photo_jpeg("coffee"), {"preset": "product"})
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (1000, 1000))
    assert box is not None
    left, top, right, bottom = box
    assert abs(max(right - left, bottom - top) - 900) <= 3
    assert abs((left + right) / 2 - 500) <= 3 and abs((top + bottom) / 2 - 500) <= 3
    for corner in ((2, 2), (997, 2), (2, 997), (997, 997)):
        assert all(channel >= 253 for channel in image.getpixel(corner))


def test_a_region_of_interest_finds_a_small_subject_in_a_large_scene(
    session: SegmentationSession,
) -> None:
    """A cut-out astronaut (its alpha from the model on the photo alone) pasted at 15 % of a
    3000 px scene: within its region the model finds it again."""
    astronaut = images.photo_image("astronaut")
    alone = session.predict(np.asarray(astronaut.resize((320, 320), LANCZOS))[np.newaxis])[0]
    truth = Image.fromarray(alone).resize((450, 450), LANCZOS)
    scene = images.photo_image("coffee").resize((3000, 2000), LANCZOS)
    scene.paste(astronaut.resize((450, 450), LANCZOS), (1650, 600), truth)
    region = "1605px 555px 2145px 1095px"  # the pasted box grown by 45 px
    image, _ = through_the_model(session, images.encode(scene, "PNG"), {"roi": region})
    alpha = np.asarray(image.getchannel("A"))
    found = alpha[600:1050, 1650:2100] > 127
    expected = np.asarray(truth) > 127
    iou = np.logical_and(found, expected).sum() / np.logical_or(found, expected).sum()
    assert iou > 0.9
    outside = np.ones(alpha.shape, bool)
    outside[555:1095, 1605:2145] = False
    assert alpha[outside].max() == 0


def test_a_shadowed_subject_on_a_background_picture(session: SegmentationSession) -> None:
    raw = {"canvas": "800x600", "scale": "80%", "shadow": "drop", "format": "webp"}
    image, box = through_the_model(
        session, images.photo_jpeg("chelsea"), raw, background=images.photo_jpeg("rocket")
    )
    assert image.size == (800, 600)
    assert box is not None
    width, height = box[2] - box[0], box[3] - box[1]
    assert abs(height - 480) <= 3 or abs(width - 640) <= 3  # its larger relative side: 80 %
    assert np.asarray(image.convert("RGBA").getchannel("A")).min() == 255


def test_decontaminated_edges_of_a_photo_shot_on_green(session: SegmentationSession) -> None:
    """The astronaut composited on green with the model's own alpha: cut out again, the soft
    edge loses its green."""
    astronaut = images.photo_image("astronaut")
    alone = session.predict(np.asarray(astronaut.resize((320, 320), LANCZOS))[np.newaxis])[0]
    alpha = np.asarray(Image.fromarray(alone).resize(astronaut.size, LANCZOS), np.float32)
    share = alpha[..., np.newaxis] / 255
    shot = np.asarray(astronaut, np.float32) * share + np.array([0, 255, 0]) * (1 - share)
    data = images.encode(Image.fromarray(np.rint(shot).astype(np.uint8)), "PNG")
    kept, _ = through_the_model(session, data, {})
    cleaned, _ = through_the_model(session, data, {"edges": "decontaminate"})
    kept_pixels, cleaned_pixels = np.asarray(kept, np.int16), np.asarray(cleaned, np.int16)
    assert np.array_equal(kept_pixels[..., 3], cleaned_pixels[..., 3])
    band = (kept_pixels[..., 3] > 0) & (kept_pixels[..., 3] < 200)

    def greenness(pixels: np.ndarray) -> float:
        return float(
            np.mean(pixels[band][:, 1] - np.maximum(pixels[band][:, 0], pixels[band][:, 2]))
        )

    assert greenness(cleaned_pixels) <= greenness(kept_pixels) / 2
