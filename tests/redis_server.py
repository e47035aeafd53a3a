"""A private, killable `redis-server` on a free loopback port, for tests.

Used by the integration tests (the rate-limit backends) and by the end-to-end tests (replicas
sharing one Redis, Redis outages). Nothing here touches the shared Redis on 6379.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.serving import free_port

START_TIMEOUT_S = 5


def answers(url: str) -> bool:
    """True when a Redis at `url` answers PING within 0.2 s."""
    client = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@dataclass
class RedisServer:
    """A redis-server of our own: no persistence, loopback only, restartable on its port."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    options: tuple[str, ...] = ()  # more redis-server arguments, e.g. ("--maxmemory", "24mb")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            *self.options,
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not answers(self.url):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGKILL: an abrupt outage, like a crashed or partitioned server."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None


def require_redis_server() -> None:
    if shutil.which("redis-server") is None:
        missing = "redis-server is not installed (scripts/install-system-deps.sh installs it)"
        if os.environ.get("TESTS_FAST") == "true":
            pytest.skip(missing)
        pytest.fail(missing)


@contextmanager
def running_redis(workdir: Path, *options: str) -> Iterator[RedisServer]:
    """A started private redis-server, stopped on exit. Without redis-server installed the test
    fails, or skips under `scripts/test.sh --fast` (TESTS_FAST), which needs no system package."""
    require_redis_server()
    server = RedisServer(workdir, options=options)
    server.start()
    try:
        yield server
    finally:
        server.stop()
