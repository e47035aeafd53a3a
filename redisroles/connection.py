"""One client per Redis, shared by every role that uses that Redis.

A plain server gets one redis-py connection pool, which `limits` also takes
(`connection_pool=`, see `RedisConnection.limits_options`); a cluster gets one redis-py
`RedisCluster`. `limits` cannot take an existing cluster client (its cluster storage builds
its own from the URL and options), so on a cluster the budgets have a client of their own with
the same options.

No command is ever retried by redis-py: a dead Redis costs one timeout, then the role's
breaker skips it. Nothing connects before the first command, so building one at import is
fine; its connections then belong to the event loop that first uses them.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from redisroles.address import RedisAddress

Client = redis.Redis | RedisCluster


class RedisConnection:
    def __init__(self, address: RedisAddress, timeout: float) -> None:
        self.address = address
        self._timeout = timeout
        self.pool: redis.ConnectionPool | None = None
        if address.cluster:
            self.client: Client = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in address.nodes],
                username=address.username,
                password=address.password,
                **self._cluster_options(timeout),
            )
        else:
            self.pool = redis.ConnectionPool.from_url(address.url, **_socket_options(timeout))
            self.client = redis.Redis(connection_pool=self.pool)

    async def probe(self) -> None:
        """Raise unless this Redis can serve the role: PING answered; on a cluster, every
        primary answers and the cluster reports all its slots served (`cluster_state:ok`)."""
        if isinstance(self.client, RedisCluster):
            await self.client.ping(target_nodes=RedisCluster.PRIMARIES)
            state = (await self.client.cluster_info()).get("cluster_state")
            if state != "ok":
                raise ConnectionError(f"cluster_state is {state}")
        elif not await self.client.ping():
            raise ConnectionError("PING failed")

    async def aclose(self) -> None:
        """Close the connections, from the loop that used them; again is harmless."""
        await self.client.aclose()
        if self.pool is not None:  # a client given a pool leaves it open
            await self.pool.disconnect()

    @property
    def limits_options(self) -> dict[str, Any]:
        """Keyword arguments for `limits`' Redis storage (with `implementation="redispy"`):
        this pool for a server; for a cluster, the options its own client is built with."""
        if self.pool is not None:
            return {"connection_pool": self.pool}
        return self._cluster_options(self._timeout)

    def _cluster_options(self, timeout: float) -> dict[str, Any]:
        return {**_socket_options(timeout), "ssl": self.address.tls}


def _socket_options(timeout: float) -> dict[str, Any]:
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }
