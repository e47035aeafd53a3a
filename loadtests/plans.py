"""Load plans, free of locust (importing locust monkey-patches the interpreter): the closed
loop's user steps, the open loop's arrival-rate schedule, and the order of the mix.

Closed loop, from the environment: STEP_USERS users added at each step [2], STEP_SECONDS a step
[30], MAX_USERS the ceiling [10: every user class gets a user], RUN_SECONDS the whole run [300],
SPAWN_RATE users started per second within a step [STEP_USERS: a step is immediate].
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import groupby

DEFAULTS = {"STEP_USERS": 2, "STEP_SECONDS": 30, "MAX_USERS": 10, "RUN_SECONDS": 300}
RAMP_WINDOW_S = 10  # a ramp is judged in windows of this length


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw or default)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise ValueError(f"{name} must be a positive number, got {raw!r}")
    return value


@dataclass(frozen=True)
class StepPlan:
    step_users: int
    step_seconds: float
    max_users: int
    run_seconds: float
    spawn_rate: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StepPlan:
        env = os.environ if env is None else env
        step, seconds, most, run = (_positive(env, name, value) for name, value in DEFAULTS.items())
        return cls(int(step), seconds, int(most), run, _positive(env, "SPAWN_RATE", int(step)))

    def tick(self, run_time: float) -> tuple[int, float] | None:
        """(users, spawn rate) wanted `run_time` seconds in; None once the run is over."""
        if run_time >= self.run_seconds:
            return None
        step = int(run_time // self.step_seconds) + 1
        return min(self.max_users, step * self.step_users), self.spawn_rate


@dataclass(frozen=True)
class Piece:
    start: float
    end: float
    rate: float  # requests per second, constant over the piece
    window: int  # pieces of one window are judged together


class Schedule:
    """An offered request rate over time, independent of the answers: comma-separated segments,
    each `R@S` (R req/s for S seconds), `A..B@S` (a ramp from A to B req/s over S seconds) or
    `A..B/K@S` (steps from A to B req/s by K, S seconds each). E.g. `1..10/1@30` (a capacity
    curve), `0.5..8@600` (a ramp), `2@120,12@60,2@180` (a spike)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.pieces: list[Piece] = []
        for segment in filter(None, (part.strip() for part in spec.split(","))):
            try:
                self._add(segment)
            except ValueError as exc:
                raise ValueError(f"rate segment {segment!r}: want R@S, A..B@S or A..B/K@S") from exc
        if not self.pieces:
            raise ValueError(f"rate schedule {spec!r} has no segment")

    def _add(self, segment: str) -> None:
        rates, seconds = segment.split("@")
        length = float(seconds)
        low, _, high = rates.partition("..")
        high, _, step = high.partition("/")
        first, last = float(low), float(high or low)
        if length <= 0 or min(first, last) < 0 or (step and float(step) <= 0):
            raise ValueError("a length, rate or step below zero")
        if step:  # steps: one window each
            count = math.floor((last - first) / float(step) + 1e-9) + 1
            self._extend([first + i * float(step) for i in range(count)], length, each=True)
        elif high:  # a ramp in one-second pieces, judged in windows
            pieces = max(1, round(length))
            ramp = [first + (last - first) * (i + 0.5) / pieces for i in range(pieces)]
            self._extend(ramp, length / pieces, each=False)
        else:
            self._extend([first], length, each=True)

    def _extend(self, rates: list[float], length: float, each: bool) -> None:
        start = self.end
        window = self.pieces[-1].window + 1 if self.pieces else 0
        for index, rate in enumerate(rates):
            at = self.end
            group = window + (index if each else int((at - start) // RAMP_WINDOW_S))
            self.pieces.append(Piece(at, at + length, rate, group))

    @property
    def end(self) -> float:
        return self.pieces[-1].end if self.pieces else 0.0

    def rate(self, t: float) -> float:
        return next((p.rate for p in self.pieces if p.start <= t < p.end), 0.0)

    def arrivals(self, first: int = 0, stride: int = 1) -> Iterator[tuple[int, float]]:
        """(index, intended time) of arrivals first, first + stride, …: arrival j is due when
        the schedule has offered j requests, so `stride` generators share a rate evenly."""
        index, offered = first, 0.0
        for piece in self.pieces:
            count = piece.rate * (piece.end - piece.start)
            while index < offered + count - 1e-9:
                yield index, piece.start + (index - offered) / piece.rate
                index += stride
            offered += count

    def windows(self) -> list[tuple[float, float, float]]:
        """(start, end, offered req/s) of each window: a step, a constant segment, or a slice
        of a ramp."""
        result = []
        for _, group in groupby(self.pieces, key=lambda piece: piece.window):
            pieces = list(group)
            start, end = pieces[0].start, pieces[-1].end
            offered = sum(p.rate * (p.end - p.start) for p in pieces)
            result.append((start, end, offered / (end - start)))
        return result


def interleave(weights: Mapping[str, int]) -> list[str]:
    """One cycle of a smooth weighted round robin: each name `weight` times, spread out. The
    open loop sends arrival j the request of cycle[j % len(cycle)], so the mix is exact however
    the arrivals are split between processes."""
    total, current, cycle = sum(weights.values()), dict.fromkeys(weights, 0), []
    for _ in range(total):
        for name, weight in weights.items():
            current[name] += weight
        chosen = max(current, key=lambda name: current[name])
        current[chosen] -= total
        cycle.append(chosen)
    return cycle


def is_repeat(index: int, share: float) -> bool:
    """Whether arrival `index` repeats a recent request: exactly `share` of any run of them."""
    return math.floor((index + 1) * share) > math.floor(index * share)
