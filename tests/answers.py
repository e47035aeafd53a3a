"""Checks on the service's answers that tests of every layer share."""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
from PIL import Image

HOUR = 3600


def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text


def assert_cutout(data: bytes, size: tuple[int, int] | None = None) -> Image.Image:
    """A cut-out: RGBA, with a transparent background and an opaque subject (and this size)."""
    image = Image.open(io.BytesIO(data))
    assert image.mode == "RGBA", image.mode
    alpha = np.asarray(image.getchannel("A"))
    assert alpha.min() < 10 and alpha.max() > 245, (alpha.min(), alpha.max())
    if size is not None:
        assert image.size == size
    return image


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    """The contract's JSON error: this status, this code, and every field of the body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert {"error", "code", "solution", "details"} <= body.keys()


def assert_budget(response: httpx.Response, limit: int, remaining: int) -> None:
    headers = response.headers
    assert headers.get("x-ratelimit-limit") == str(limit), (response.status_code, headers)
    assert headers.get("x-ratelimit-remaining") == str(remaining), (response.status_code, headers)
    reset = int(headers["x-ratelimit-reset"])
    now = time.time()
    assert now - 5 < reset <= now + HOUR + 5


def assert_limited(response: httpx.Response, limit: int | None = None, remaining: int = 0) -> None:
    """A 429 with its Retry-After no earlier than the reset (and, given `limit`, the budget)."""
    received = time.time()
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "rate_limited"
    if limit is not None:
        assert_budget(response, limit, remaining)
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert int(retry_after) >= 1
    assert received + int(retry_after) >= int(response.headers["x-ratelimit-reset"])
