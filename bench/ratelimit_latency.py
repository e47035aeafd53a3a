"""Latency one ``RateLimiter.hit`` adds to a request, and Redis round trips per hit.

    .venv/bin/python bench/ratelimit_latency.py [--redis-url redis://127.0.0.1:6379/0] [-n 2000]

Uses a unique key prefix on the given Redis and deletes only its own keys after.
Round trips are counted with Redis MONITOR: commands sent by a client that name
our keys, excluding the commands the Lua scripts run inside Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ratelimit import RateLimiter
from tests.serving import free_port  # nothing listens there once it is returned

LIMITS = {"remove": "1000000/hour"}  # never refused: we time the accepted path


async def timings(limiter: RateLimiter, count: int) -> list[float]:
    await limiter.hit("remove", "ip:warm-up")  # connect, load scripts
    samples = []
    for i in range(count):
        started = time.perf_counter()
        await limiter.hit("remove", f"ip:10.0.{i % 50}.1")  # 50 clients, like a real mix
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def report(label: str, samples: list[float]) -> None:
    cut = statistics.quantiles(samples, n=100)
    print(f"{label:<34} median {statistics.median(samples):7.0f} µs   p95 {cut[94]:7.0f} µs")


def count_round_trips(url: str, prefix: str, hits: int) -> float:
    sent: list[str] = []
    ready = threading.Event()
    done_marker = f"{prefix}-done"

    def watch() -> None:
        client = redis.Redis.from_url(url)
        with client.monitor() as monitor:
            ready.set()
            while done_marker not in (command := monitor.next_command())["command"]:
                # Commands the Lua scripts run show up with client_type "lua".
                if command["client_type"] != "lua" and "ip:monitored" in command["command"]:
                    sent.append(command["command"].split()[0])
        client.close()

    async def run() -> None:
        limiter = RateLimiter(LIMITS, redis_url=url, key_prefix=prefix)
        await limiter.hit("remove", "ip:warm-up")
        for _ in range(hits):
            await limiter.hit("remove", "ip:monitored")

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(5)
    asyncio.run(run())
    with redis.Redis.from_url(url) as client:
        client.echo(done_marker)  # MONITOR sees it after every command before it
    watcher.join(10)
    print(f"commands sent per {hits} hits: {dict(Counter(sent))}")
    return len(sent) / hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("-n", type=int, default=2000, help="hits per measurement")
    args = parser.parse_args()
    prefix = f"bench-ratelimit-{uuid.uuid4().hex[:8]}"

    report("in-process (MemoryStorage)", asyncio.run(timings(RateLimiter(LIMITS), args.n)))
    dead = RateLimiter(LIMITS, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    report("Redis down, fail-open fallback", asyncio.run(timings(dead, args.n)))
    try:
        for strategy in ("moving-window", "fixed-window", "sliding-window-counter"):
            limiter = RateLimiter(
                LIMITS, redis_url=args.redis_url, key_prefix=prefix, strategy=strategy
            )
            report(f"Redis ({strategy})", asyncio.run(timings(limiter, args.n)))
        trips = count_round_trips(args.redis_url, prefix, 50)
        print(f"Redis round trips per hit (moving window, MONITOR): {trips:g}")
    finally:
        with redis.Redis.from_url(args.redis_url) as client:  # our keys only
            if keys := list(client.scan_iter(match=f"{prefix}:*", count=1000)):
                client.delete(*keys)


if __name__ == "__main__":
    main()
