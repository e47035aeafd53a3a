"""A run's answers second by second, merged across locust processes; SLO verdicts over them; and
the capacity answer of a step or ramp run. Free of locust, so the tests import it directly.

Outcomes: `ok` (the check passed), `shed` (a 503 carrying Retry-After: the service turning work
away, an answer the SLO bounds by its own ratio) and `error` (anything else, 429s included).
Latency percentiles are over the ok answers, from the intended send time in the open loop.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.plans import Schedule

KEEP_UP = 0.95  # a window keeps up when it serves this share of the rate it was offered


def rounded(ms: float) -> int:
    """Two significant digits above 100 ms, as locust keeps its histogram."""
    return int(ms) if ms < 100 else int(round(ms, 2 - len(str(int(ms)))))


class Series:
    """Counts keyed `second|class|what`: requests sent (by the second of their intended send
    time and their endpoint class), their answers by outcome, the ok ones by latency (what is a
    rounded ms), and ok answers by the second they arrived (`second||served`: the served rate);
    and the X-Cache counts. Plain counters, so a locust worker sends its share to the master."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self.cache: Counter[str] = Counter()
        self.meta: dict[str, Any] = {}
        self.merge(data or {})

    def count(self, t: float, cls: str, what: str | int) -> None:
        self.counts[f"{math.floor(t)}|{cls}|{what}"] += 1

    def sent(self, t: float, cls: str) -> None:
        self.count(t, cls, "sent")

    def answered(self, t: float, done: float, cls: str, outcome: str, ms: float) -> None:
        self.count(t, cls, outcome)
        if outcome == "ok":
            self.count(t, cls, rounded(ms))
            self.count(done, "", "served")

    def merge(self, data: dict[str, Any]) -> None:
        self.counts.update(data.get("counts", {}))
        self.cache.update(data.get("cache", {}))
        self.meta.update(data.get("meta", {}))

    def data(self) -> dict[str, Any]:
        return {"counts": self.counts, "cache": self.cache, "meta": self.meta}

    def drain(self) -> dict[str, Any]:
        """What was recorded since the last drain (a worker's report to the master)."""
        data = self.data()
        self.counts, self.cache = Counter(), Counter()
        return data

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.data()))

    @classmethod
    def load(cls, path: Path) -> Series:
        return cls(json.loads(path.read_text())) if path.exists() else cls()

    def stats(
        self, start: float = -math.inf, end: float = math.inf, cls: str | None = None
    ) -> Stats:
        """What was sent in [start, end) (of one class, or all with the ok answers that arrived
        then); `seconds` is that span, cut to the seconds the run has."""
        total, seen = Stats(), set()
        for key, count in self.counts.items():
            second, name, what = key.split("|")
            seen.add(int(second))
            if start <= int(second) < end and cls in (None, name):
                if what.isdigit():
                    total.latencies[int(what)] += count
                else:
                    setattr(total, what, getattr(total, what) + count)
        first, last = max(start, min(seen, default=0)), min(end, max(seen, default=-1) + 1)
        total.seconds = max(last - first, 0)
        return total

    @property
    def classes(self) -> list[str]:
        return sorted({key.split("|")[1] for key in self.counts} - {""})


@dataclass
class Stats:
    seconds: float = 0.0
    sent: int = 0
    ok: int = 0
    shed: int = 0
    error: int = 0
    served: int = 0
    latencies: Counter[int] = field(default_factory=Counter)

    @property
    def answered(self) -> int:
        return self.ok + self.shed + self.error

    def ratio(self, count: int) -> float:
        return count / self.answered if self.answered else 0.0

    def ms(self, q: float) -> float:
        """The q-th percentile (0..100) of the ok answers' latency; NaN without any."""
        rank, seen = q / 100 * sum(self.latencies.values()), 0
        for ms in sorted(self.latencies):
            seen += self.latencies[ms]
            if seen >= rank:
                return float(ms)
        return math.nan


@dataclass(frozen=True)
class Slo:
    """Thresholds: p95/p99 in ms per endpoint class (`*`: every class), the ratios of errors
    and of shed answers, and a minimum served rate. None: not judged."""

    p95: dict[str, float] = field(default_factory=dict)
    p99: dict[str, float] = field(default_factory=dict)
    error_ratio: float | None = 0.01
    shed_ratio: float | None = None
    min_rps: float | None = None
    shed_is_error: bool = False

    @staticmethod
    def limits(text: str | None) -> dict[str, float]:
        """`3000` (every class) or `/remove-background=3000,*=5000`."""
        pairs = [item.rpartition("=") for item in (text or "").split(",") if item.strip()]
        return {(name.strip() or "*"): float(ms) for name, _, ms in pairs}

    def judge(self, series: Series, start: float = -math.inf, end: float = math.inf) -> list[Check]:
        """The checks over what was sent in [start, end), each class apart for latencies."""
        stats = series.stats(start, end)
        by_class = {name: series.stats(start, end, name) for name in series.classes}
        errors = stats.error + stats.shed * self.shed_is_error
        found = [
            Check(f"p{q} {name}", s.ms(q), limit)
            for q, limits in ((95, self.p95), (99, self.p99))
            for name, s in by_class.items()
            if (limit := limits.get(name, limits.get("*"))) is not None
        ]
        if self.error_ratio is not None:
            found.append(Check("error ratio", stats.ratio(errors), self.error_ratio))
        if self.shed_ratio is not None and not self.shed_is_error:
            found.append(Check("shed ratio", stats.ratio(stats.shed), self.shed_ratio))
        if self.min_rps is not None:
            served = stats.served / stats.seconds if stats.seconds else 0.0
            found.append(Check("served req/s", served, self.min_rps, at_least=True))
        return found


@dataclass(frozen=True)
class Check:
    name: str
    measured: float
    limit: float
    at_least: bool = False

    @property
    def ok(self) -> bool:
        if math.isnan(self.measured):
            return True  # nothing answered ok in that class: no latency to judge
        return self.measured >= self.limit if self.at_least else self.measured <= self.limit

    def __str__(self) -> str:
        def shown(value: float) -> str:
            if "ratio" in self.name:
                return f"{value:.1%}"
            return f"{value:,.0f} ms" if self.name.startswith("p") else f"{value:.2f}"

        relation = ("≥" if self.at_least else "≤") if self.ok else ("<" if self.at_least else ">")
        return f"{self.name} {shown(self.measured)} {relation} {shown(self.limit)}"


@dataclass
class Window:
    start: float
    end: float
    offered: float  # req/s
    stats: Stats
    failed: list[Check]


@dataclass
class Capacity:
    """The knee (the highest offered rate whose window met the SLO and kept up), what one pod
    holds, and the replicas a target rate needs."""

    windows: list[Window]
    pods: int = 1
    target: float | None = None

    @property
    def knee(self) -> float | None:
        return max((w.offered for w in self.windows if not w.failed), default=None)

    @property
    def per_pod(self) -> float | None:
        return self.knee / self.pods if self.knee else None

    @property
    def replicas(self) -> int | None:
        return math.ceil(self.target / self.per_pod) if self.target and self.per_pod else None

    def summary(self) -> str:
        if self.knee is None:
            return "capacity: no window met the SLO: no knee"
        line = f"capacity: knee {self.knee:g} req/s offered; {self.per_pod:.2f} req/s per pod "
        plan = f"; {self.replicas} replicas for {self.target:g} req/s" if self.target else ""
        return line + f"({self.pods} serving){plan}"


def verdict(series: Series, slo: Slo) -> tuple[bool, str]:
    """Whether the run met the SLO (and was answered at all), and the verdict's line."""
    checks = slo.judge(series)
    if not series.stats().answered:
        checks.append(Check("answers", 0, 1, at_least=True))
    failed = [check for check in checks if not check.ok]
    shown = "; ".join(map(str, failed or checks)) or "no threshold set"
    return not failed, f"SLO verdict: {'FAIL' if failed else 'PASS'}: {shown}"


def capacity(
    series: Series, slo: Slo, pods: int = 1, target: float | None = None
) -> Capacity | None:
    """Each window of the run's schedule judged on its own; None for a closed-loop run."""
    if not series.meta.get("rate"):
        return None
    windows = []
    for start, end, offered in Schedule(series.meta["rate"]).windows():
        failed = [check for check in slo.judge(series, start, end) if not check.ok]
        stats = series.stats(start, end)
        if (served := stats.served / (end - start)) < KEEP_UP * offered:
            failed.append(Check("served req/s", served, KEEP_UP * offered, at_least=True))
        windows.append(Window(start, end, offered, stats, failed))
    return Capacity(windows, pods, target)
