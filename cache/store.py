"""Where cached values live: the store protocol and the in-process LRU (Redis: redis_store).

Every store reads the result and the mask of a request in one lookup and writes what a
request produced in one call. A value that fails its checksum is a miss and is deleted.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cache import codec
from cache.keys import CacheKeys

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
        return True, f"in process, {self.stored_bytes // MIB} of {self.max_bytes // MIB} MiB used"

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
