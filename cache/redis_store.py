"""Cached values in Redis, shared by replicas, never at the rate-limit budgets' expense.

A lookup is one MGET of the request's result and mask (one hash tag: one slot on a cluster); a
save is one call of a Lua script that writes the values only while they cannot make Redis
evict what it must keep. Redis errors and timeouts never reach the caller: the role's breaker
turns them into a miss and skips Redis for a while (`redisroles.Breaker`).

Why a script: Redis evicts by its own measure (approximated LRU or LFU over all keys, or
refusing writes under `noeviction`), and an idle spent budget is exactly what an LRU evicts
first. So the cache lets Redis evict for it only where that cannot cost a budget: a Redis
with `maxmemory` and an evicting policy that holds no budgets. Anywhere else it stops writing
while `used_memory` (read by the script itself, atomically with the write, on the node that
holds the keys) is above its mark: `memory_percent` of `maxmemory`, or `unbounded_max_bytes`
on a Redis without one. Measured choice: docs/operations.md, "Redis roles".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from cache import codec
from cache.keys import CacheKeys
from cache.store import Lookup
from redisroles import Breaker, RedisConnection, RedisDown

log = logging.getLogger("bg_remover.cache")
T = TypeVar("T")

# KEYS: the keys to write. ARGV: TTL in seconds, 1 when budgets live here (else 0), the mark
# in percent of maxmemory, the mark in bytes without maxmemory, then one value per key.
# Returns how many values were written.
WRITE_WITHIN_MEMORY = """
local info = redis.call('INFO', 'memory')
local used = tonumber(string.match(info, 'used_memory:(%d+)'))
local maxmemory = tonumber(string.match(info, 'maxmemory:(%d+)'))
local policy = string.match(info, 'maxmemory_policy:(%S+)')
local evicts_for_us = ARGV[2] == '0' and maxmemory > 0 and policy ~= 'noeviction'
local mark = tonumber(ARGV[4])
if maxmemory > 0 then mark = maxmemory * tonumber(ARGV[3]) / 100 end
local written = 0
for i, key in ipairs(KEYS) do
  local value = ARGV[4 + i]
  if evicts_for_us or used + #value <= mark then
    redis.call('SET', key, value, 'EX', ARGV[1])
    used = used + #value
    written = written + 1
  end
end
return written
"""


class RedisStore:
    stored_bytes: int | None = None  # Redis bounds itself (see above)

    def __init__(
        self,
        connection: RedisConnection,
        breaker: Breaker,
        *,
        max_item_bytes: int,
        ttl_s: float,
        budgets_here: bool,
        memory_percent: float,
        unbounded_max_bytes: int,
    ) -> None:
        self.connection = connection
        self.client = connection.client
        self.breaker = breaker
        self.max_item_bytes = max_item_bytes
        self.ttl_s = max(1, round(ttl_s))
        self.budgets_here = budgets_here
        self.memory_percent = memory_percent
        self.unbounded_max_bytes = unbounded_max_bytes
        self.full = False  # the last save found Redis at its mark
        self._write = self.client.register_script(WRITE_WITHIN_MEMORY)

    async def lookup(self, keys: CacheKeys) -> Lookup:
        values = await self._run(lambda: self.client.mget([keys.result, keys.mask]))
        if values is None:
            return Lookup()
        entries = [codec.decode(value) for value in values]
        corrupted = [
            key
            for key, value, entry in zip((keys.result, keys.mask), values, entries, strict=True)
            if value is not None and entry is None
        ]
        if corrupted:
            await self._run(lambda: self.client.delete(*corrupted))
        return Lookup(entries[0], entries[1])

    async def save(self, entries: Sequence[tuple[str, dict[str, Any], bytes]]) -> None:
        values = [(key, codec.encode(metadata, payload)) for key, metadata, payload in entries]
        values = [(key, value) for key, value in values if len(value) <= self.max_item_bytes]
        if not values:
            return
        marks = [self.ttl_s, int(self.budgets_here), self.memory_percent, self.unbounded_max_bytes]
        written = await self._run(
            lambda: self._write(
                keys=[key for key, _ in values], args=[*marks, *(value for _, value in values)]
            )
        )
        if written is not None:
            self._note_room(full=int(written) < len(values))

    async def check(self) -> tuple[bool, str]:
        try:
            await self.breaker.call(self.connection.probe, probe=True)
        except RedisDown:
            return False, f"redis unreachable ({self.breaker.last_error}), results not cached"
        if self.full:
            return True, "redis ok, at its memory mark: new results wait for old ones to expire"
        return True, "redis ok"

    async def _run(self, operation: Callable[[], Awaitable[T]]) -> T | None:
        try:
            return await self.breaker.call(operation)
        except RedisDown:  # any failure of the store is a miss, never an error
            return None

    def _note_room(self, full: bool) -> None:
        if full and not self.full:
            log.warning(
                "result cache: Redis is at the cache's memory mark; new results are not "
                "cached until older ones expire"
            )
        elif self.full and not full:
            log.info("result cache: Redis has room again")
        self.full = full
