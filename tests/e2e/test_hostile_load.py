"""A burst of valid but heavy inputs against a real `bentoml serve` with a 1.5 GB memory
budget: every answer is 200, 413 or 503 with Retry-After, the process tree's memory stays
within its idle size plus the budget, and afterwards the service is healthy and serves."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests import images
from tests.e2e.server import BentoServer
from tests.serving import tree_rss

pytestmark = pytest.mark.slow

BUDGET_MB = 1500
MIB = 1024 * 1024
ACCEPTABLE = {200, 413, 503}


def white_png(size: tuple[int, int], mode: str) -> bytes:
    """A white image near the pixel cap: a few hundred kB on the wire, gigabytes decoded."""
    if mode == "I;16":
        image = Image.fromarray(np.full(size[::-1], 65535, dtype=np.uint16))
    else:
        image = Image.new(mode, size, "white")
    return images.encode(image, "PNG", compress_level=9)


class PeakSampler:
    """The largest RSS of a process tree, sampled every 20 ms while running."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> PeakSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    env = {"MEMORY_BUDGET_MB": str(BUDGET_MB)}
    with BentoServer(tmp_path_factory.mktemp("hostile"), env=env) as server:
        yield server


def test_heavy_burst_stays_in_budget_and_leaves_a_healthy_service(
    budgeted: BentoServer, tmp_path: Path
) -> None:
    assert budgeted.process is not None
    pid = budgeted.process.pid
    grey16 = white_png((7000, 7000), "I;16")  # 49 MP, just under the 50 MP cap
    white = white_png((5000, 5000), "RGB")  # 25 MP
    with httpx.Client(base_url=budgeted.url, timeout=300) as client:
        warm = client.post("/remove-background", files={"file": ("a.jpg", images.photo())})
        assert warm.status_code == 200
        idle = tree_rss(pid)

        def single(_: int) -> httpx.Response:
            return client.post("/remove-background", files={"file": ("grey16.png", grey16)})

        def batch() -> httpx.Response:
            files = [("files", (f"white{n}.png", white)) for n in range(4)]
            return client.post("/remove-background-batch", files=files)

        with PeakSampler(pid) as sampler, ThreadPoolExecutor(4) as pool:
            batched = pool.submit(batch)
            answers = [*pool.map(single, range(3)), batched.result()]
        for answer in answers:
            assert answer.status_code in ACCEPTABLE, answer.text[:300]
            if answer.status_code == 503:
                assert int(answer.headers["Retry-After"]) >= 1
        assert any(answer.status_code == 200 for answer in answers)
        grown = sampler.peak - idle
        assert grown < BUDGET_MB * MIB, (
            f"process tree grew by {grown // MIB} MiB over its idle {idle // MIB} MiB; "
            f"budget {BUDGET_MB} MiB"
        )

        health = client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "healthy", health.text
        after = client.post("/remove-background", files={"file": ("a.jpg", images.photo())})
        assert after.status_code == 200
