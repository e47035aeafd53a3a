"""What the tests of the model service apart share, whether it runs as a process
(tests/e2e/test_model_pool.py) or in a container (tests/container/test_model_pool.py): a
cut-out through the API, proof that the model ran apart, and calls under load while the API's
connections to the model service are counted."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import httpx
import numpy as np
import psutil
from PIL import Image

from tests import images

PHOTO = images.photo("chelsea", "JPEG")
CONCURRENCY = 6
# Connections opened while calls run: without renewal CONCURRENCY would be the most.
RENEWED = 3 * CONCURRENCY


def cutout(url: str) -> httpx.Response:
    return httpx.post(
        f"{url}/remove-background",
        files={"file": ("cat.jpg", PHOTO)},
        data={"max_width": "400"},
        timeout=120,
    )


def assert_the_model_ran_apart(
    api_url: str, model_inferences: Callable[[], float], api_inferences: Callable[[], float]
) -> None:
    """A real cut-out through the API, whose one inference the model service counted and
    nothing in the API's own processes did."""
    before = model_inferences()
    response = cutout(api_url)
    assert response.status_code == 200, response.text
    alpha = np.asarray(Image.open(io.BytesIO(response.content)).getchannel("A"))
    assert alpha.min() < 10 and alpha.max() > 245
    assert model_inferences() == before + 1
    assert api_inferences() == 0


def ports_connected_to(port: int) -> set[int]:
    """Local ports of the connections open to `port` right now (from this host)."""
    return {
        connection.laddr.port
        for connection in psutil.net_connections("tcp")
        if connection.raddr
        and connection.raddr.port == port
        and connection.status == psutil.CONN_ESTABLISHED
    }


def cutouts_while_connections_renew(
    api_url: str, model_port: int, deadline_s: float
) -> tuple[int, list[httpx.Response]]:
    """CONCURRENCY cut-outs at a time until the API has opened RENEWED new connections to the
    model service (or the deadline passed): how many it opened, and every answer."""
    seen = ports_connected_to(model_port)
    initial, answers = set(seen), []
    deadline = time.monotonic() + deadline_s
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        pending: set[Future[httpx.Response]] = {
            pool.submit(cutout, api_url) for _ in range(CONCURRENCY)
        }
        while len(seen - initial) < RENEWED and time.monotonic() < deadline:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            answers += [future.result() for future in done]
            pending |= {pool.submit(cutout, api_url) for _ in done}
            seen |= ports_connected_to(model_port)
        answers += [future.result() for future in pending]
    return len(seen - initial), answers
