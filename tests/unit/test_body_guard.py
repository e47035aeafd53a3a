"""The body guard on a bare ASGI app: size limits, and bodies that arrive too slowly.

Pace is measured on the guard's clock: the rate tests move a fake one by each chunk's pause
instead of waiting; only a body that never comes waits on the real clock (asyncio's)."""

from __future__ import annotations

import asyncio
import time

import pytest

from contract.errors import PayloadTooLarge, RequestTimeout
from gateway.body_guard import BodyGuard

CHUNK = b"x" * 1000


async def read_all(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
    """An app that reads the whole body, as the routes do."""
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"read"})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def body(chunks: int, pause_s: float, clock: Clock | None = None):  # type: ignore[no-untyped-def]
    """A body of `chunks` chunks, each `pause_s` after the last: on `clock` when given."""
    sent = 0

    async def receive() -> dict:
        nonlocal sent
        if clock is None:
            await asyncio.sleep(pause_s)
        else:
            clock.now += pause_s
        sent += 1
        return {"type": "http.request", "body": CHUNK, "more_body": sent < chunks}

    return receive


def run(guard: BodyGuard, receive, headers: list | None = None) -> list[dict]:  # type: ignore[no-untyped-def]
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/remove-background", "headers": headers or []}
    asyncio.run(guard(scope, receive, send))
    return sent


def test_a_prompt_body_passes() -> None:
    guard = BodyGuard(read_all, max_bytes=10_000, timeout_s=1, min_bytes_per_s=1000, grace_s=0.1)
    sent = run(guard, body(5, 0.001))
    assert sent[0]["status"] == 200


def test_a_declared_length_over_the_limit_is_answered_at_once() -> None:
    guard = BodyGuard(read_all, max_bytes=100)
    sent = run(guard, body(1, 0), headers=[(b"content-length", b"101")])
    assert sent[0]["status"] == 413


def test_a_streamed_body_over_the_limit_stops_at_the_read_that_crosses_it() -> None:
    guard = BodyGuard(read_all, max_bytes=2500)
    with pytest.raises(PayloadTooLarge):
        run(guard, body(5, 0))


def test_a_stalled_body_times_out() -> None:
    guard = BodyGuard(read_all, max_bytes=10**6, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as timed_out:
        run(guard, body(2, 5.0))
    assert time.monotonic() - started < 1.0
    assert timed_out.value.headers["Connection"] == "close"


def test_a_trickle_below_the_minimum_rate_is_cut_after_the_grace() -> None:
    # 1000 bytes every 0.05 s = 20 kB/s, below the 100 kB/s minimum: cut at the first chunk
    # past the 0.3 s grace, with 6 kB read.
    clock = Clock()
    guard = BodyGuard(
        read_all, max_bytes=10**6, timeout_s=30, min_bytes_per_s=100_000, grace_s=0.3, clock=clock
    )
    with pytest.raises(RequestTimeout, match="6000 bytes so far"):
        run(guard, body(1000, 0.05, clock))
    assert clock.now == pytest.approx(0.3)


def test_a_steady_body_above_the_minimum_rate_is_not_cut() -> None:
    clock = Clock()
    guard = BodyGuard(
        read_all, max_bytes=10**6, timeout_s=30, min_bytes_per_s=5_000, grace_s=0.1, clock=clock
    )
    sent = run(guard, body(200, 0.02, clock))  # 50 kB/s for 4 s
    assert sent[0]["status"] == 200
    assert clock.now == pytest.approx(4.0)


def test_a_body_later_than_the_deadline_is_cut_however_fast_it_was() -> None:
    clock = Clock()
    guard = BodyGuard(read_all, max_bytes=10**7, timeout_s=2, min_bytes_per_s=1, clock=clock)
    with pytest.raises(RequestTimeout):
        run(guard, body(1000, 0.01, clock))  # 100 kB/s, but 10 s long
    assert clock.now == pytest.approx(2.0)
