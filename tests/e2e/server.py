"""Starting a real `bentoml serve` of this project for end-to-end tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.serving import (
    GENEROUS_LIMITS,
    ROOT,
    Connect,
    ServerProcess,
    bentoml_serve,
    free_port,
    fresh_address,
)

__all__ = ["BentoServer", "Connect", "fresh_address"]


def split_service(port: int, target: str, service: str, depends: dict[str, str]) -> list[str]:
    """One service of the Bento alone, reaching its dependencies at the given URLs."""
    where = ["--host", "127.0.0.1", "--port", str(port)]
    reach = [f"--depends={name}={url}" for name, url in depends.items()]
    start = [sys.executable, "-m", "bentoml_cli._internal.start", "start-http-server"]
    return [*start, target, "--service-name", service, *reach, *where]


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


class BentoServer(ServerProcess):
    """One `bentoml serve` process group with limits tests never meet, its port and its log."""

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
        port = free_port()
        env = {
            **os.environ,
            "BENTOML_HOME": str(own_bentoml_home(workdir / f"bentoml-home-{port}")),
            "BENTOML_DO_NOT_TRACK": "true",
            "UPLOAD_DIR": str(workdir / "uploads"),
            "OUTPUT_DIR": str(workdir / "outputs"),
            **GENEROUS_LIMITS,
            **(env or {}),
        }
        log_path = workdir / f"bentoml-{port}.log"
        command = bentoml_serve(port, target)
        if service_name is not None:
            command = split_service(port, target, service_name, depends or {})
        super().__init__(command, env, log_path, port, cwd=cwd)

    def start(self, wait: bool = True) -> BentoServer:
        """Start, and (unless `wait` is False) wait until /readyz answers."""
        if wait:
            super().start()
        else:
            self.spawn()
        return self

    def __enter__(self) -> BentoServer:
        self.start()
        return self
