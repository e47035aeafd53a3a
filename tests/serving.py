"""What every server we start shares, for the tests, bench/ and loadtests/: free ports, fresh
upload bytes, fresh client addresses, limits tests never meet, readiness, a server process's
start and stop, and the memory of its process tree."""

from __future__ import annotations

import ipaddress
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 180
# Limits high enough that functional tests never meet them; rate-limit tests set their own.
GENEROUS_LIMITS = {
    f"RATE_LIMIT_{name}_PER_HOUR": "1000000"
    for name in ("REMOVE_BG", "PREVIEW", "BASE64", "READ_FILE", "BATCH", "IMPROVE")
}
# Each test that needs a fresh budget speaks from a loopback address no other test used.
_LOOPBACK_ADDRESSES = (str(ipaddress.IPv4Address("127.0.1.0") + n) for n in itertools.count())
Connect = Callable[..., httpx.Client]


def fresh_address() -> str:
    return next(_LOOPBACK_ADDRESSES)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh(data: bytes, rng: random.Random | None = None) -> bytes:
    """The same image under bytes never sent before (a result-cache miss): decoders stop at
    the end-of-image marker and ignore what follows. `rng` makes the bytes reproducible."""
    return data + b"\0" + (rng.randbytes(16) if rng else os.urandom(16))


def bentoml_serve(port: int, target: str = "service:BackgroundRemover") -> list[str]:
    host = ["--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, "-m", "bentoml", "serve", target, *host]


def wait_ready(
    url: str, timeout: float = READY_TIMEOUT_S, exited: Callable[[], bool] = lambda: False
) -> None:
    """Poll `url` until it answers 200; RuntimeError once `exited()` or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not exited():
        with suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer 200 ({'exited' if exited() else 'timed out'})")


class ServerProcess:
    """A server in a session of its own on `port`, its output in `log_path`: started and
    awaited until `ready_path` answers; stopped with SIGTERM to its process group, then
    SIGKILL to whatever of the group is left."""

    def __init__(
        self,
        command: list[str],
        env: dict[str, str],
        log_path: Path,
        port: int,
        ready_path: str = "/readyz",
        cwd: Path = ROOT,
    ) -> None:
        self.command, self.env, self.log_path, self.port = command, env, log_path, port
        self.ready_path, self.cwd = ready_path, cwd
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        self.spawn()
        self.wait_ready()
        return self

    def spawn(self) -> None:
        """Start the process without waiting for it to answer."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        try:
            wait_ready(self.url + self.ready_path, timeout, self.exited)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; its log ends:\n{self.log()}") from exc

    def exited(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def stop(self) -> None:
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # workers that outlived the arbiter
        self.process.wait()

    def log(self, chars: int = 5000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def meet_base64_limit(client: httpx.Client, image_b64: str, limit: int) -> httpx.Response:
    """Spend a base64 budget of `limit` with a refused option, then meet the 429."""
    for _ in range(limit):
        refused = client.post("/remove-background-base64", json={"image": image_b64, "quality": 5})
        assert refused.status_code == 400, refused.text
    response = client.post("/remove-background-base64", json={"image": image_b64})
    assert response.status_code == 429, response.text
    return response


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants; none once it has gone."""
    with suppress(psutil.Error):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def tree_rss(pid: int) -> int:
    """The resident memory of a process and its descendants (one that exits meanwhile: 0)."""
    total = 0
    for process in process_tree(pid):
        with suppress(psutil.Error):
            total += process.memory_info().rss
    return total
