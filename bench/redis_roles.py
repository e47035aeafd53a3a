"""Spent budgets and cache hits when results fill Redis, for each way of laying Redis out.

    .venv/bin/python bench/redis_roles.py [--maxmemory-mb 64] [--requests 400]

Each layout gets fresh private redis-servers (loopback, free ports) and the service's own
RateLimiter and RedisStore. First 500 clients spend their whole budget (3/hour); then a stream
of requests goes through the cache: 30 % repeat one of the last 20 results, the others are new
results of 0.8 MB (a 1 MP PNG cut-out) plus a 4 kB mask, until results worth several times
`maxmemory` were made. After every 50 requests, 50 of the spent clients try again and 10 new
clients spend their first unit. Printed per layout: spent budgets that came back, budget
decisions made in process (Redis refused the budget write: fail-open), hits among the
repeats, keys Redis evicted, and peak `used_memory` against `maxmemory`; then the Redis
memory one spent budget takes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cache import CacheKeys, RedisStore, codec
from ratelimit import RateLimiter, RateLimitExceeded
from redisroles import CACHE, LIMITS, RedisDown, breaker_for, connect
from tests.redis_server import RedisServer

CLIENTS, BUDGET = 500, 3
RESULT_BYTES, MASK_BYTES = 800_000, 4_000
REPLAY_SHARE, RECENT = 0.3, 20


@dataclass(frozen=True)
class Layout:
    name: str
    policy: str
    two_roles: bool = False
    # "lru": below its mark where budgets live, dropping its own idlest keys (the service's);
    # "stop": below its mark, writing nothing more once there; "free": plain SETs; "off"
    cache: str = "lru"


LAYOUTS = [
    Layout("one Redis, plain writes (before)", "allkeys-lru", cache="free"),
    Layout("one Redis, plain writes (before)", "noeviction", cache="free"),
    Layout("one Redis, no cache there", "allkeys-lru", cache="off"),
    Layout("one Redis, stop at the mark", "allkeys-lru", cache="stop"),
    Layout("one Redis, own LRU below the mark", "allkeys-lru"),
    Layout("one Redis, own LRU below the mark", "noeviction"),
    Layout("two roles", "allkeys-lru", two_roles=True),
]


def start(workdir: Path, *options: str) -> RedisServer:
    folder = Path(tempfile.mkdtemp(dir=workdir))
    server = RedisServer(folder, options=options)
    server.start()
    return server


async def run(layout: Layout, budgets_url: str, cache_url: str, requests: int) -> dict[str, float]:
    connections = connect({LIMITS: budgets_url, CACHE: cache_url}, 1.0)
    in_process: list[str] = []
    limiter = RateLimiter(
        {"remove": f"{BUDGET}/hour"},
        connection=connections[LIMITS],
        on_fallback=in_process.append,
    )
    store = RedisStore(
        connections[CACHE],
        breaker_for(CACHE, 1.0, 5.0, "results not cached"),
        max_item_bytes=8 << 20,
        ttl_s=86_400,
        budgets_here=layout.cache in ("lru", "stop") and not layout.two_roles,
        memory_percent=75.0,
        unbounded_max_bytes=256 << 20,
    )
    store.samples = 0 if layout.cache == "stop" else store.samples
    before = used_memory(budgets_url)
    for client in range(CLIENTS):
        for _ in range(BUDGET):
            await limiter.hit("remove", f"ip:{client}")
    per_budget = (used_memory(budgets_url) - before) / CLIENTS
    rng, recent, came_back = random.Random(7), [], set()
    hits = replays = 0
    for number in range(1, requests + 1):
        replay = bool(recent) and rng.random() < REPLAY_SHARE
        keys = rng.choice(recent) if replay else CacheKeys(os.urandom(16).hex(), "m", "o")
        found = await store.lookup(keys) if layout.cache != "off" else None
        replays += replay
        if found is not None and found.result is not None:
            hits += replay
        elif layout.cache != "off":
            entries = [(keys.result, {}, os.urandom(RESULT_BYTES))]
            entries.append((keys.mask, {}, os.urandom(MASK_BYTES)))
            await (plain_save(store, entries) if layout.cache == "free" else store.save(entries))
        recent = [*recent, keys][-RECENT:] if not replay else recent
        if number % 50 == 0:
            for client in rng.sample(range(CLIENTS), 50):
                try:
                    await limiter.hit("remove", f"ip:{client}")
                    came_back.add(client)
                except RateLimitExceeded:
                    pass
            for client in range(10):  # new clients: their first budget write
                await limiter.hit("remove", f"ip:new-{number}-{client}")
    return {
        "came_back": len(came_back),
        "hit_ratio": hits / max(1, replays),
        "in_process": len(in_process),
        "per_budget": per_budget,
    }


async def plain_save(store: RedisStore, entries: list[tuple[str, dict, bytes]]) -> None:
    """The cache's writes before it minded the budgets: pipelined SETs, whatever Redis holds."""

    async def write() -> object:
        pipe = store.client.pipeline(transaction=False)
        for key, metadata, payload in entries:
            pipe.set(key, codec.encode(metadata, payload), ex=store.ttl_s)
        return await pipe.execute()

    with contextlib.suppress(RedisDown):  # a refused write is a miss, as in the store
        await store.breaker.call(write)


def used_memory(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return int(client.info("memory")["used_memory"])


def stats(url: str) -> tuple[int, int, int]:
    with redis.Redis.from_url(url) as client:
        memory, counters = client.info("memory"), client.info("stats")
    return counters["evicted_keys"], memory["used_memory_peak"], memory["maxmemory"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--maxmemory-mb", type=int, default=64)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    maxmemory = str(args.maxmemory_mb << 20)
    print(
        f"maxmemory {args.maxmemory_mb} MB, {args.requests} requests "
        f"(~{args.requests * RESULT_BYTES * 0.7 / 2**20:.0f} MB of new results), "
        f"{CLIENTS} clients with spent budgets of {BUDGET}"
    )
    print(
        f"{'layout':<34} {'policy':<12} {'budgets back':>12} {'in process':>10} "
        f"{'repeat hits':>11} {'evicted':>8} {'peak/max':>8}"
    )
    per_budget = 0.0
    with tempfile.TemporaryDirectory() as workdir:
        for layout in LAYOUTS:
            options = ("--maxmemory", maxmemory, "--maxmemory-policy", layout.policy)
            cache = start(Path(workdir), *options)
            budgets = start(Path(workdir), "--maxmemory-policy", "noeviction")
            try:
                budgets_url = budgets.url if layout.two_roles else cache.url
                figures = asyncio.run(run(layout, budgets_url, cache.url, args.requests))
                evicted, peak, limit = stats(cache.url)
            finally:
                cache.stop()
                budgets.stop()
            back = f"{figures['came_back']:.0f}/{CLIENTS}"
            print(
                f"{layout.name:<34} {layout.policy:<12} {back:>12} {figures['in_process']:>10.0f} "
                f"{figures['hit_ratio']:>11.0%} {evicted:>8} {peak / limit:>8.0%}"
            )
            per_budget = figures["per_budget"] if layout.two_roles else per_budget
    print(f"Redis memory per spent budget of {BUDGET} (moving window): {per_budget:.0f} bytes")


if __name__ == "__main__":
    main()
