"""A real Prometheus server (Debian's `prometheus` package) for tests: its own port, storage and
configuration, scraping given targets every second and evaluating given rules every second,
queried over its HTTP API."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.serving import free_port

READY_TIMEOUT_S = 60
INTERVAL = "1s"


@dataclass
class Target:
    """A scrape target with the labels Kubernetes' service discovery would give its pod."""

    address: str
    labels: dict[str, str]


@dataclass
class Prometheus:
    workdir: Path
    targets: list[Target]
    rules: dict[str, Any]  # the content of a rule file (`groups:`)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.skip("prometheus is missing: apt-get install prometheus")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "rules.yml").write_text(yaml.safe_dump(self.rules))
        config = {
            "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
            "rule_files": ["rules.yml"],
            "scrape_configs": [
                {
                    "job_name": f"target-{n}",
                    "static_configs": [{"targets": [t.address], "labels": t.labels}],
                }
                for n, t in enumerate(self.targets)
            ],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        command = [
            binary,
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with (self.workdir / "prometheus.log").open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready after {READY_TIMEOUT_S} s:\n{self.log()}")

    def api(self, path: str, **params: str) -> Any:
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = answer.json()
        assert answer.status_code == 200 and body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The instant vector `expr` evaluates to (now, or at the Unix time `at`)."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self.api("query", **params)
        assert data["resultType"] == "vector", data
        return data["result"]

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The one value `expr` evaluates to, None when it returns nothing."""
        result = self.query(expr, at)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
