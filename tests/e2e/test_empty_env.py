"""A real `bentoml serve` with every setting present but empty starts on the defaults.

This is what a container image does: each variable it declares exists, maybe empty, and
neither `podman run` nor Kubernetes can unset it.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from settings import Settings
from tests import images
from tests.e2e.server import BentoServer

pytestmark = pytest.mark.slow

EVERY_SETTING_EMPTY = {name.upper(): "" for name in Settings.model_fields}


def test_every_setting_empty_serves_a_cutout_on_the_defaults(tmp_path: Path) -> None:
    with BentoServer(tmp_path, env=EVERY_SETTING_EMPTY) as server:
        assert all(server.env[name] == "" for name in EVERY_SETTING_EMPTY)
        response = httpx.post(
            f"{server.url}/remove-background",
            files={"file": ("astronaut.jpg", images.photo("astronaut", "JPEG"))},
            timeout=120,
        )
        # METRICS_ALLOW="" once admitted nobody; the default admits loopback.
        metrics = httpx.get(f"{server.url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    # The default budget of /remove-background (10 an hour) is in force, one unit spent.
    assert response.headers["x-ratelimit-limit"] == "10"
    cutout = Image.open(io.BytesIO(response.content))
    assert cutout.mode == "RGBA" and cutout.size == (512, 512)
    alpha = np.asarray(cutout.getchannel("A"))
    assert alpha.min() < 10 and alpha.max() > 245
    assert metrics.status_code == 200
    assert "bg_remover_requests_total" in metrics.text
