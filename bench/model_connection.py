"""Calls lost when the API's connection to a model service of its own is renewed.

    .venv/bin/python bench/model_connection.py [--seconds 60] [--concurrency 8] [--max-age 1]

Starts the model service alone (`start-http-server --service-name segmenter`, as the model pool
runs it), then calls it over HTTP with BentoML's own client, renewing the connection every
`--max-age` seconds, for `--seconds` each: once with BentoML's renewal, which closes the old
connection at once, and once with the graceful renewal of `gateway/model_link.py`. Prints the
calls answered and failed, and the connections opened, for each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

from _bentoml_impl.client.proxy2 import AsyncClient  # noqa: E402

from gateway.model_link import recycle_connections  # noqa: E402
from service import Segmenter  # noqa: E402
from tests.serving import free_port  # noqa: E402

INPUT = np.random.default_rng(0).integers(0, 256, (1, 320, 320, 3), dtype=np.uint8)


def start_model_service(port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        *(sys.executable, "-m", "bentoml_cli._internal.start", "start-http-server"),
        *("service:BackgroundRemover", "--service-name", "segmenter", "--port", str(port)),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    sys.exit(f"the model service did not start:\n{log.read_text()[-3000:]}")


async def run(url: str, graceful: bool, seconds: float, concurrency: int, age: float) -> Counter:
    client = AsyncClient(
        url,
        media_type="application/vnd.bentoml+pickle",
        service=Segmenter,
        timeout=121,
        server_ready_timeout=0,
        max_age=age,
        max_requests=10**9,
    )
    await client.__aenter__()
    if graceful:
        recycle_connections(client)
    outcomes: Counter = Counter()
    manager = client._session_manager
    make_session = manager._make_client

    def counted() -> object:
        outcomes["sessions opened"] += 1
        return make_session()

    manager._make_client = counted
    stop = time.monotonic() + seconds

    async def caller() -> None:
        while time.monotonic() < stop:
            try:
                await client.call("segment", INPUT)
                outcomes["answered"] += 1
            except Exception as error:  # what the API would turn into a 503
                outcomes[f"failed ({type(error).__name__})"] += 1

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    await client.close()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-age", type=float, default=1)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        model = start_model_service(port, Path(tmp) / "model.log")
        try:
            for graceful in (False, True):
                url = f"http://127.0.0.1:{port}"
                outcomes = asyncio.run(
                    run(url, graceful, args.seconds, args.concurrency, args.max_age)
                )
                label = "graceful renewal" if graceful else "BentoML's renewal"
                print(f"{label:<18} {dict(outcomes)}")
        finally:
            os.killpg(model.pid, signal.SIGTERM)
            model.wait(30)


if __name__ == "__main__":
    main()
