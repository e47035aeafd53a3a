"""Cached values in Redis, shared by replicas, never at the rate-limit budgets' expense.

A lookup is one MGET of the request's result and mask (one hash tag: one slot on a cluster).
A save asks a small Lua script how many of its values may be written (`MAKE_ROOM`, which also
makes that room), then writes them in one pipelined round trip. Redis errors and timeouts
never reach the caller: the role's breaker turns them into a miss and skips Redis for a while
(`redisroles.Breaker`).

Why: Redis evicts by its own measure (approximated LRU or LFU over all keys, or it refuses
writes under `noeviction`), and an idle spent budget is exactly what an LRU evicts first. So
Redis may evict for the cache only where that cannot cost a budget: a Redis with `maxmemory`
and an evicting policy that holds no budgets. Anywhere else the cache keeps below its own mark,
`memory_percent` of `maxmemory` (or `unbounded_max_bytes` on a Redis without one): the script
reads `used_memory` on the node that will hold the keys and makes room by deleting the idlest
of the cache's own keys: a few found with SCAN MATCH from a random place in the keyspace,
ranked by OBJECT IDLETIME (OBJECT FREQ under an LFU policy), as Redis ranks its samples.
Nothing else is ever deleted. The values never pass through Lua
(Lua would copy each result on Redis's one thread); saves running at the same moment may
each take the same room, so the mark can be passed by what is being written at once.
Measured choice: docs/operations.md, "Redis roles".
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from cache import codec
from cache.keys import KEY_PREFIX, CacheKeys
from cache.store import Lookup
from redisroles import Breaker, RedisConnection, RedisDown

log = logging.getLogger("bg_remover.cache")
T = TypeVar("T")
SAMPLES = 16  # own keys ranked per eviction (Redis samples 5 keys of any kind)
SCAN_STEP, SCAN_LIMIT = 256, 16_384  # keys SCAN visits per call, and per save at most

# KEYS: the keys to write. ARGV: 1 when budgets live here (else 0), the mark in percent of
# maxmemory, the mark in bytes without maxmemory, the cache's key prefix, own keys ranked per
# eviction, the SCAN cursor to start from (random: every save looks at another part of the
# keyspace), then the size of each value. Returns how many of the values, in order, may go in.
MAKE_ROOM = """
local info = redis.call('INFO', 'memory')
local used = tonumber(string.match(info, 'used_memory:(%d+)'))
local maxmemory = tonumber(string.match(info, 'maxmemory:(%d+)'))
local policy = string.match(info, 'maxmemory_policy:(%S+)')
if ARGV[1] == '0' and maxmemory > 0 and policy ~= 'noeviction' then
  return #KEYS
end
local mark = tonumber(ARGV[3])
if maxmemory > 0 then mark = maxmemory * tonumber(ARGV[2]) / 100 end
local pattern, samples, cursor = ARGV[4] .. '*', tonumber(ARGV[5]), ARGV[6]
local lfu = string.find(policy, 'lfu') ~= nil
local scanned, wrapped = 0, false

-- The cache's own keys, SAMPLES of them at most, ranked idlest first. SCAN with MATCH finds
-- them however many budgets there are (a random key would mostly be a budget).
local function own_keys()
  local found = {}
  while #found < samples and scanned < SCAN_LIMIT and not (wrapped and cursor == '0') do
    if cursor == '0' then wrapped = true end
    local reply = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', SCAN_STEP)
    cursor, scanned = reply[1], scanned + SCAN_STEP
    for _, key in ipairs(reply[2]) do
      local score
      if lfu then
        score = 255 - redis.call('OBJECT', 'FREQ', key)
      else
        score = redis.call('OBJECT', 'IDLETIME', key)
      end
      found[#found + 1] = {key, score}
    end
  end
  table.sort(found, function(a, b) return a[2] > b[2] end)
  return found
end

local function make_room(needed)
  local freed = 0
  while freed < needed do
    local victims = own_keys()
    if #victims == 0 then break end
    for _, victim in ipairs(victims) do
      if freed >= needed then break end
      if redis.call('EXISTS', victim[1]) == 1 then
        freed = freed + #victim[1] + redis.call('STRLEN', victim[1])
        redis.call('DEL', victim[1])
      end
    end
  end
  return freed
end

local fits = 0
for i = 1, #KEYS do
  local size = tonumber(ARGV[6 + i])
  local over = used + size - mark
  if over > 0 then used = used - make_room(over) end
  if used + size > mark then return fits end
  used = used + size
  fits = fits + 1
end
return fits
""".replace("SCAN_STEP", str(SCAN_STEP)).replace("SCAN_LIMIT", str(SCAN_LIMIT))


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
        self.samples = SAMPLES  # 0: never delete its own keys, stop at the mark
        self.full = False  # the last save found no room, not even by evicting its own keys
        self._make_room = self.client.register_script(MAKE_ROOM)

    async def lookup(self, keys: CacheKeys) -> Lookup:
        answer = await self._run(lambda: self.client.mget([keys.result, keys.mask]))
        if answer is None:
            return Lookup()
        values = cast(list[bytes | None], answer)  # bytes: the client decodes no responses
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
        room: list[str | int | float] = [
            int(self.budgets_here),
            self.memory_percent,
            self.unbounded_max_bytes,
            KEY_PREFIX,
            self.samples,
            random.getrandbits(32),
            *(len(value) for _, value in values),
        ]
        fits = await self._run(lambda: self._make_room(keys=[k for k, _ in values], args=room))
        if fits is None:
            return
        self._note_room(full=int(fits) < len(values))
        if int(fits) > 0:
            await self._run(lambda: self._write(values[: int(fits)]))

    async def _write(self, values: Sequence[tuple[str, bytes]]) -> Any:
        pipe = self.client.pipeline(transaction=False)
        for key, value in values:
            pipe.set(key, value, ex=self.ttl_s)
        return await pipe.execute()

    async def aclose(self) -> None:
        """Close the connections, from the loop that used them (shared with the limiter when
        both roles have one Redis: whichever closes first closes it)."""
        await self.connection.aclose()

    async def check(self) -> tuple[bool, str]:
        try:
            await self.breaker.call(self.connection.probe, probe=True)
        except RedisDown:
            return False, f"redis unreachable ({self.breaker.last_error}), results not cached"
        if self.full:
            return True, "redis ok, full of other data: new results are not cached"
        return True, "redis ok"

    async def _run(self, operation: Callable[[], Awaitable[T]]) -> T | None:
        try:
            return await self.breaker.call(operation)
        except RedisDown:  # any failure of the store is a miss, never an error
            return None

    def _note_room(self, full: bool) -> None:
        if full and not self.full:
            log.warning(
                "result cache: no room below the cache's memory mark, even without its own "
                "older results; new results are not cached"
            )
        elif self.full and not full:
            log.info("result cache: Redis has room again")
        self.full = full
