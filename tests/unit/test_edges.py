"""Edge decontamination on composites whose foreground is known: a subject shot on green."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from optimizer import finish, parse_options, prepare, read_source
from optimizer.edges import decontaminate
from tests import images

GREEN = np.array([0, 255, 0], np.float32)
SIZE = 320  # the model's grid: the mask is the alpha, pixel for pixel


def soft_disc(size: int = SIZE, blur: float = 6.0) -> Image.Image:
    """An ellipse with a soft edge: a band of alphas between 0 and 255 all around."""
    yy, xx = np.mgrid[:size, :size]
    inside = ((xx - size / 2) / (size * 0.3)) ** 2 + ((yy - size / 2) / (size * 0.4)) ** 2 <= 1
    return Image.fromarray(inside.astype(np.uint8) * 255).filter(ImageFilter.GaussianBlur(blur))


def on_green(foreground: np.ndarray, alpha: Image.Image) -> Image.Image:
    """I = a*F + (1-a)*green: what a camera records of F in front of a green screen."""
    share = np.asarray(alpha, np.float32)[..., np.newaxis] / 255
    mixed = foreground.astype(np.float32) * share + GREEN * (1 - share)
    return Image.fromarray(np.rint(mixed).astype(np.uint8))


def soft_band(alpha: Image.Image) -> np.ndarray:
    values = np.asarray(alpha)
    return (values > 0) & (values < 255)


def green_excess(pixels: np.ndarray) -> float:
    """How much greener than its other channels a colour is, on average (the fringe)."""
    colours = pixels.astype(np.float32)
    return float(np.mean(colours[:, 1] - np.maximum(colours[:, 0], colours[:, 2])))


FOREGROUNDS = {
    "orange": lambda: np.full((SIZE, SIZE, 3), (230, 120, 40), np.uint8),
    "photo": lambda: np.asarray(images.photo_image("astronaut").resize((SIZE, SIZE))),
}


@pytest.mark.parametrize("name", FOREGROUNDS)
def test_the_green_fringe_drops_by_more_than_half(name: str) -> None:
    foreground = FOREGROUNDS[name]()
    alpha = soft_disc()
    shot = on_green(foreground, alpha)
    band = soft_band(alpha)
    cleaned = np.asarray(decontaminate(shot, alpha))
    before, after = np.asarray(shot)[band], cleaned[band]
    assert green_excess(after) <= green_excess(before) / 2
    # On a new background a pixel shows a*F: its colour error counts as much as it shows.
    # The estimate is smooth (a 90 px mean), so a textured subject keeps part of its error.
    share = np.asarray(alpha, np.float32)[band][:, np.newaxis] / 255
    error_before = np.mean(share * np.abs(before.astype(np.float32) - foreground[band]))
    error_after = np.mean(share * np.abs(after.astype(np.float32) - foreground[band]))
    assert error_after < error_before * (0.5 if name == "orange" else 0.8)


def test_a_solid_foreground_is_recovered_closely() -> None:
    foreground = FOREGROUNDS["orange"]()
    alpha = soft_disc()
    cleaned = np.asarray(decontaminate(on_green(foreground, alpha), alpha), np.int16)
    visible = np.asarray(alpha) >= 64  # where the colour shows; fainter pixels barely count
    band = soft_band(alpha) & visible
    assert np.abs(cleaned[band] - foreground[band]).mean() < 8


def test_pixels_outside_the_soft_band_are_untouched() -> None:
    alpha = soft_disc()
    shot = on_green(FOREGROUNDS["photo"](), alpha)
    cleaned = np.asarray(decontaminate(shot, alpha))
    hard = ~soft_band(alpha)
    assert np.array_equal(cleaned[hard], np.asarray(shot)[hard])


def test_a_hard_matte_changes_nothing() -> None:
    alpha = soft_disc(blur=0).point(lambda value: 255 if value > 127 else 0)
    shot = on_green(FOREGROUNDS["orange"](), alpha)
    assert decontaminate(shot, alpha) is shot


def test_an_rgba_photo_keeps_its_own_alpha() -> None:
    alpha = soft_disc()
    shot = on_green(FOREGROUNDS["orange"](), alpha).convert("RGBA")
    shot.putalpha(Image.linear_gradient("L").resize((SIZE, SIZE)))
    cleaned = decontaminate(shot, alpha)
    assert cleaned.mode == "RGBA"
    assert np.array_equal(np.asarray(cleaned.getchannel("A")), np.asarray(shot.getchannel("A")))


def test_through_the_pipeline_the_alpha_is_byte_identical_and_the_fringe_gone() -> None:
    foreground = FOREGROUNDS["photo"]()
    alpha = soft_disc()
    data = images.encode(on_green(foreground, alpha), "PNG")
    outputs = {}
    for edges in ("keep", "decontaminate"):
        options = parse_options({"edges": edges})
        prepared = prepare(
            read_source(data, options, max_input_pixels=10**7), options, model_size=None
        )
        result = finish(prepared, np.asarray(alpha), options)
        outputs[edges] = np.asarray(Image.open(io.BytesIO(result.data)).convert("RGBA"))
    kept, cleaned = outputs["keep"], outputs["decontaminate"]
    assert np.array_equal(kept[..., 3], cleaned[..., 3])
    assert np.array_equal(kept[..., 3], np.asarray(alpha))
    band = soft_band(alpha)
    assert green_excess(cleaned[band][:, :3]) <= green_excess(kept[band][:, :3]) / 2
