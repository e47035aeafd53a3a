"""Composition options through the whole HTTP API in process, with the real u2netp model."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from tests import images
from tests.answers import assert_error

pytestmark = pytest.mark.slow


def post(client: httpx.Client, data: bytes, path: str = "/remove-background", **options: str):
    return client.post(path, files={"file": ("photo.jpg", data)}, data=options)


def open_image(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def test_the_product_preset(client: httpx.Client) -> None:
    response = post(client, images.fresh(images.photo_jpeg("coffee")), preset="product")
    image = open_image(response)
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (1000, 1000))
    assert (response.headers["x-image-width"], response.headers["x-image-height"]) == (
        "1000",
        "1000",
    )
    assert all(channel >= 253 for channel in image.getpixel((3, 3)))


def test_a_canvas_with_a_shadow_as_json(client: httpx.Client) -> None:
    options = {"canvas": "640x480", "scale": "75%", "shadow": "drop", "edges": "decontaminate"}
    response = post(
        client, images.fresh(images.photo_jpeg("chelsea")), "/remove-background-preview", **options
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (640, 480)
    assert body["optimization"]["dimensions"] == "640x480"


def test_a_region_of_interest_clears_everything_outside_it(client: httpx.Client) -> None:
    image = open_image(
        post(client, images.fresh(images.photo_jpeg("astronaut")), roi="25% 0% 75% 100%")
    )
    alpha = np.asarray(image.getchannel("A"))
    assert alpha[:, :128].max() == 0 and alpha[:, 384:].max() == 0
    assert alpha[:, 128:384].max() > 200


def test_a_region_of_interest_has_a_mask_of_its_own_in_the_cache(client: httpx.Client) -> None:
    """The model ran on the region only: its mask is never reused for the whole photo, nor the
    whole photo's mask for a region."""
    photo = images.fresh(images.photo_jpeg("astronaut"))
    with_roi = post(client, photo, roi="25% 0% 75% 100%")
    whole = post(client, photo, format="webp")
    other_roi = post(client, photo, roi="0 0 50% 100%", format="webp")
    same_roi = post(client, photo, roi="25% 0% 75% 100%", format="webp")
    assert [r.headers["x-cache"] for r in (with_roi, whole, other_roi, same_roi)] == [
        "miss",
        "miss",
        "miss",
        "mask",
    ]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("scale", "5%"),
        ("position", "left"),
        ("canvas", "10x10"),
        ("canvas", "99999x99999"),
        ("roi", "0 0 0 0"),
        ("shadow", "purple"),
        ("shadow_opacity", "150"),
        ("edges", "sharpen"),
        ("crop_margin", "1 2 3"),
    ],
)
def test_a_value_outside_the_grammar_is_400_naming_the_option(
    client: httpx.Client, option: str, value: str
) -> None:
    response = post(client, images.photo_jpeg("chelsea"), **{option: value})
    assert_error(response, 400, "invalid_parameter")
    assert option in response.json()["details"]


def test_a_region_outside_the_photo_is_400(client: httpx.Client) -> None:
    response = post(client, images.photo_jpeg("chelsea"), roi="0 0 452px 100px")
    assert_error(response, 400, "invalid_parameter")
    assert "roi" in response.json()["details"]
