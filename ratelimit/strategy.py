"""Strategy: turn one spend on a ``limits`` strategy into a RateLimitStatus.

Storage-agnostic: the same code runs on Redis and on the in-process fallback.
"""

from __future__ import annotations

import math

from limits import RateLimitItem
from limits.aio.storage import Storage
from limits.aio.strategies import STRATEGIES, FixedWindowRateLimiter
from limits.aio.strategies import RateLimiter as Strategy

from .status import RateLimitStatus

DEFAULT_STRATEGY = "moving-window"


def strategy_class(name: str) -> type[Strategy]:
    """Look a strategy up in ``limits``' own registry by its documented name."""
    try:
        return STRATEGIES[name]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown rate-limit strategy {name!r} (known: {known})") from None


def make_strategy(name: str, storage: Storage) -> Strategy:
    return strategy_class(name)(storage)


async def spend(
    strategy: Strategy, item: RateLimitItem, identifiers: tuple[str, ...], cost: int
) -> RateLimitStatus:
    """Spend ``cost`` units if they all fit, else none; report the budget after.

    Moving window on Redis: 2 round trips (EVALSHA of limits' acquire script, then
    EVALSHA of its window script for remaining/reset), refused or not. The first
    call on a fresh server adds a SCRIPT LOAD per script.
    """
    acquired = await strategy.hit(item, *identifiers, cost=cost)
    if not acquired and isinstance(strategy, FixedWindowRateLimiter):
        await _refund(strategy, item, identifiers, cost)
    return await peek(strategy, item, identifiers, exceeded=not acquired)


async def peek(
    strategy: Strategy, item: RateLimitItem, identifiers: tuple[str, ...], exceeded: bool = False
) -> RateLimitStatus:
    """The budget as it stands, spending nothing (one round trip on Redis)."""
    stats = await strategy.get_window_stats(item, *identifiers)
    return RateLimitStatus(
        limit=item.amount,
        remaining=max(0, stats.remaining),
        reset_at=math.ceil(stats.reset_time),
        exceeded=exceeded,
    )


async def _refund(
    strategy: Strategy, item: RateLimitItem, identifiers: tuple[str, ...], cost: int
) -> None:
    # limits' fixed window INCRBYs first and compares after, so a refused hit has
    # already been counted; the contract says a 429 spends nothing, so give it back.
    # Not atomic: a concurrent request may see the counter high for a moment and be
    # refused too (never wrongly admitted).
    key = item.key_for(*identifiers)
    await strategy.storage.incr(key, item.get_expiry(), amount=-cost)
