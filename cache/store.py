"""Where cached values live: an in-process LRU, or Redis shared by replicas.

Both read the result and the mask of a request in one lookup (one MGET on Redis) and write
what a request produced in one call (one pipelined round trip on Redis). A value that fails its
checksum is a miss and is deleted. Redis errors and timeouts never reach the caller: the store
reports a miss, skips Redis for `retry_interval` seconds, and logs the outage once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from cache import codec
from cache.keys import CacheKeys

log = logging.getLogger("bg_remover.cache")
T = TypeVar("T")
Entry = tuple[dict[str, Any], bytes]  # metadata, payload
MIB = 1024 * 1024


@dataclass(frozen=True)
class Lookup:
    result: Entry | None = None
    mask: Entry | None = None


class CacheStore(Protocol):
    @property
    def stored_bytes(self) -> int | None:
        """What an in-process store holds; None for Redis."""
        ...

    async def lookup(self, keys: CacheKeys) -> Lookup: ...

    async def save(self, entries: Sequence[tuple[str, dict[str, Any], bytes]]) -> None: ...

    async def check(self) -> tuple[bool, str]: ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """An LRU of framed values, bounded in bytes, with the same TTL as Redis would apply."""

    def __init__(
        self,
        max_bytes: int,
        max_item_bytes: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self.ttl_s = ttl_s
        self.clock = clock
        self.stored_bytes = 0
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def lookup(self, keys: CacheKeys) -> Lookup:
        return Lookup(self._get(keys.result), self._get(keys.mask))

    async def save(self, entries: Sequence[tuple[str, dict[str, Any], bytes]]) -> None:
        for key, metadata, payload in entries:
            value = codec.encode(metadata, payload)
            if len(value) > min(self.max_item_bytes, self.max_bytes):
                continue
            self._drop(key)
            self._items[key] = (self.clock() + self.ttl_s, value)
            self.stored_bytes += len(value)
        while self.stored_bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    async def aclose(self) -> None:
        """Nothing to close: the store is this process's memory."""

    async def check(self) -> tuple[bool, str]:
        return True, (
            f"in-process cache, {self.stored_bytes // MIB} of {self.max_bytes // MIB} MiB used"
        )

    def put_raw(self, key: str, value: bytes) -> None:
        """Store bytes as they are (tests use it to plant a corrupted value)."""
        self._drop(key)
        self._items[key] = (self.clock() + self.ttl_s, value)
        self.stored_bytes += len(value)

    def _get(self, key: str) -> Entry | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        entry = codec.decode(value) if expires > self.clock() else None
        if entry is None:
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return entry

    def _drop(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.stored_bytes -= len(item[1])


class RedisStore:
    def __init__(
        self,
        url: str,
        max_item_bytes: int,
        ttl_s: float,
        timeout: float,
        retry_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_item_bytes = max_item_bytes
        self.stored_bytes: int | None = None  # Redis bounds itself (maxmemory)
        self.ttl_s = max(1, round(ttl_s))
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.clock = clock
        # No retries: a dead or slow Redis costs one timeout, then it is skipped for a while.
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        self._down_until: float | None = None

    async def lookup(self, keys: CacheKeys) -> Lookup:
        # The client is opened without decode_responses: values are bytes, never str.
        values = cast(
            "list[bytes | None] | None",
            await self._run(lambda client: client.mget([keys.result, keys.mask])),
        )
        if values is None:
            return Lookup()
        entries = [codec.decode(value) for value in values]
        corrupted = [
            key
            for key, value, entry in zip((keys.result, keys.mask), values, entries, strict=True)
            if value is not None and entry is None
        ]
        if corrupted:
            await self._run(lambda client: client.delete(*corrupted))
        return Lookup(entries[0], entries[1])

    async def save(self, entries: Sequence[tuple[str, dict[str, Any], bytes]]) -> None:
        values = [(key, codec.encode(metadata, payload)) for key, metadata, payload in entries]
        values = [(key, value) for key, value in values if len(value) <= self.max_item_bytes]
        if not values:
            return

        async def write(client: redis.Redis) -> Any:
            pipe = client.pipeline(transaction=False)
            for key, value in values:
                pipe.set(key, value, ex=self.ttl_s)
            return await pipe.execute()

        await self._run(write)

    async def aclose(self) -> None:
        """Close the connections, from the loop that used them."""
        await self._client.aclose()

    async def check(self) -> tuple[bool, str]:
        answered = await self._run(lambda client: client.ping(), probe=True)
        if answered is None:
            return False, "cache: off (redis unavailable)"
        return True, "cache: redis"

    async def _run(
        self, operation: Callable[[redis.Redis], Awaitable[T]], probe: bool = False
    ) -> T | None:
        if self._down_until is not None and self.clock() < self._down_until and not probe:
            return None
        try:
            async with asyncio.timeout(self.timeout * 2):
                answer = await operation(self._client)
        except Exception as exc:  # any failure of the store is a miss, never an error
            if self._down_until is None:
                log.warning(
                    "result cache off: redis unavailable (%s); retrying every %g s",
                    type(exc).__name__,
                    self.retry_interval,
                )
            self._down_until = self.clock() + self.retry_interval
            return None
        if self._down_until is not None:
            log.warning("result cache back on: redis answers again")
            self._down_until = None
        return answer


def open_store(
    redis_url: str | None,
    *,
    max_bytes: int,
    max_item_bytes: int,
    ttl_s: float,
    timeout: float,
    retry_interval: float,
) -> CacheStore:
    if redis_url:
        return RedisStore(redis_url, max_item_bytes, ttl_s, timeout, retry_interval)
    return MemoryStore(max_bytes, max_item_bytes, ttl_s)
