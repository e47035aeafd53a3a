"""Starting a real `bentoml serve` of this project for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.serving import GENEROUS_LIMITS, Connect, free_port, fresh_address

__all__ = ["BentoServer", "Connect", "fresh_address"]

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 180


def own_bentoml_home(home: Path) -> Path:
    """A BENTOML_HOME for one server, sharing the real model and Bento stores. Every
    `bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir as it starts, which would
    wipe the metrics of any other server running on the machine."""
    shared = Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")
    home.mkdir(parents=True, exist_ok=True)
    for store in ("models", "bentos"):
        (shared / store).mkdir(parents=True, exist_ok=True)
        if not (home / store).exists():
            (home / store).symlink_to(shared / store, target_is_directory=True)
    return home


class BentoServer:
    """One `bentoml serve` process group, its port and its log."""

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str] | None = None,
        target: str = "service:BackgroundRemover",
        cwd: Path = ROOT,
        service_name: str | None = None,
        depends: dict[str, str] | None = None,
    ) -> None:
        """`service_name`: serve that service alone, as a container of a split deployment
        does (BentoML's `start-http-server`), reaching `depends` (service -> URL)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"bentoml-{self.port}.log"
        self.env = {
            **os.environ,
            "BENTOML_HOME": str(own_bentoml_home(workdir / f"bentoml-home-{self.port}")),
            "BENTOML_DO_NOT_TRACK": "true",
            "UPLOAD_DIR": str(workdir / "uploads"),
            "OUTPUT_DIR": str(workdir / "outputs"),
            **GENEROUS_LIMITS,
            **(env or {}),
        }
        self.target = target
        self.cwd = cwd
        self.service_name = service_name
        self.depends = depends or {}
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        where = ["--host", "127.0.0.1", "--port", str(self.port)]
        if self.service_name is None:
            return [str(Path(sys.executable).with_name("bentoml")), "serve", self.target, *where]
        depends = [f"--depends={name}={url}" for name, url in self.depends.items()]
        return [
            *(sys.executable, "-m", "bentoml_cli._internal.start", "start-http-server"),
            *(self.target, "--service-name", self.service_name, *depends, *where),
        ]

    def start(self, wait: bool = True) -> BentoServer:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"not ready after {READY_TIMEOUT_S}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def __enter__(self) -> BentoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
