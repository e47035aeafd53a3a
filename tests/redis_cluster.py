"""A private three-master Redis Cluster on loopback, for tests: three `redis-server
--cluster-enabled yes` on free ports joined by `redis-cli --cluster create`. A master can be
killed and started again on its port, from its own nodes.conf, and rejoins with its slots.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.redis_server import RedisServer
from tests.serving import free_port

MASTERS = 3
NODE_TIMEOUT_MS = 1000  # how long until the others call a silent master failed
STATE_TIMEOUT_S = 20


@dataclass
class RedisCluster:
    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        """The service's form of a cluster URL: every node, any one is enough to start."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def state(self, node: RedisServer) -> str:
        try:
            with redis.Redis(port=node.port, socket_timeout=0.5) as client:
                return str(client.cluster("info")["cluster_state"])
        except redis.RedisError:
            return "unreachable"

    def wait_state(self, wanted: str, nodes: list[RedisServer] | None = None) -> None:
        """Until every running node (or the given ones) reports `wanted` (`ok` or `fail`)."""
        deadline = time.monotonic() + STATE_TIMEOUT_S
        watched = nodes or [node for node in self.nodes if node.process is not None]
        while any(self.state(node) != wanted for node in watched):
            if time.monotonic() > deadline:
                states = [self.state(node) for node in watched]
                raise AssertionError(f"cluster not {wanted}: {states}")
            time.sleep(0.1)

    def total(self, section: str, field_prefix: str) -> int:
        """A counter summed over the running nodes, e.g. ("errorstats", "errorstat_CROSSSLOT")."""
        found = 0
        for node in self.nodes:
            if node.process is None:
                continue
            with redis.Redis(port=node.port) as client:
                for name, value in client.info(section).items():
                    if name.startswith(field_prefix):
                        found += int(value["count"] if isinstance(value, dict) else value)
        return found

    def keys(self, pattern: str) -> list[bytes]:
        found: list[bytes] = []
        for node in self.nodes:
            with redis.Redis(port=node.port) as client:
                found += client.scan_iter(match=pattern)
        return found


@contextmanager
def running_cluster(workdir: Path) -> Iterator[RedisCluster]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server and redis-cli are not installed")
    with ExitStack() as stack:
        nodes = []
        for index in range(MASTERS):
            folder = workdir / f"node-{index}"
            folder.mkdir()
            node = RedisServer(folder)
            node.options = (
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{node.port}.conf",
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
                # The bus port defaults to port + 10000, beyond 65535 for a high free port.
                "--cluster-port",
                str(free_port()),
            )
            node.start()
            stack.callback(node.stop)
            nodes.append(node)
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        create = ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0"]
        subprocess.run(
            [*create, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        cluster = RedisCluster(nodes)
        cluster.wait_state("ok")
        yield cluster
