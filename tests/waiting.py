"""Waiting for a state the test can observe, instead of sleeping and assuming it."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

POLL_S = 0.01


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Return as soon as `condition()` holds; fail after `timeout_s` naming `what`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout_s:g} s")
        time.sleep(POLL_S)


def metric_sum(url: str, name: str) -> float:
    """The sum over every label set of one metric on a server's `/metrics` (loopback peers)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.split("{", 1)[0].split(" ", 1)[0] == name
    )
