"""The pure half of bench/performance.py: statistics, target evaluation and the Markdown report.

Standard library only, so tests/unit/test_bench.py can check it without servers or models.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MB = 1_000_000
STAGES = ("decode", "preprocess", "inference", "compose", "encode")

# The targets, as the brief states them.
MIN_CEILING_SHARE = 0.80  # served req/s at saturation / bare onnxruntime images/s
MIN_REMBG_SPEEDUP = 1.5  # our req/s at saturation / rembg s req/s at saturation
MAX_P50_VS_REMBG = 0.6  # our p50 at concurrency 1 / rembg s p50 at concurrency 1
MAX_12MP_VS_1MP = 1.3  # p50 of 12 MP at max_width=1200 / p50 of 1 MP at max_width=1200
MAX_RSS_MB = 1500  # whole process tree, peak during concurrency 8
MAX_SOAK_GROWTH = 0.05  # RSS growth over the second half of the soak
BUSY_MACHINE = 0.25  # other processes' share of all cores above which a run is flagged


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation (numpy's default); NaN if empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class LoadResult:
    """One closed-loop load level against one server."""

    server: str
    concurrency: int
    duration_s: float
    latencies_s: list[float] = field(default_factory=list)  # successful requests only
    errors: Counter[str] = field(default_factory=Counter)  # kind -> count
    response_bytes: list[int] = field(default_factory=list)
    other_cpu: float = math.nan  # share of all cores used by other processes meanwhile

    @property
    def ok(self) -> int:
        return len(self.latencies_s)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput(self) -> float:
        """Successful requests per second over the fixed window."""
        return self.ok / self.duration_s if self.duration_s > 0 else math.nan

    def latency_ms(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000

    @property
    def mean_response_kb(self) -> float:
        return statistics.fmean(self.response_bytes) / 1000 if self.response_bytes else math.nan


@dataclass
class RssTrace:
    """Total RSS of a process tree sampled over time, each sample tagged with a phase."""

    samples: list[tuple[float, str, int]] = field(default_factory=list)  # (t, phase, bytes)

    def add(self, t: float, phase: str, rss: int) -> None:
        self.samples.append((t, phase, rss))

    def of(self, phase: str) -> list[int]:
        return [rss for _, p, rss in self.samples if p == phase]

    def peak(self, phase: str) -> int | None:
        values = self.of(phase)
        return max(values) if values else None

    def last(self, phase: str) -> int | None:
        values = self.of(phase)
        return values[-1] if values else None


def soak_growth(samples: Sequence[tuple[float, int]], window_fraction: float = 0.1) -> float:
    """Relative RSS growth over the second half of a run: from its middle to its end.

    Each end is the median of the samples in a window of `window_fraction` of the run, so a
    single spike (a batch in flight) does not decide it. NaN with fewer than 4 samples.
    """
    if len(samples) < 4:
        return math.nan
    start, end = samples[0][0], samples[-1][0]
    span = end - start
    middle = start + span / 2
    width = max(span * window_fraction, 1e-9)
    at_middle = [rss for t, rss in samples if middle - width / 2 <= t <= middle + width / 2]
    at_end = [rss for t, rss in samples if t >= end - width]
    if not at_middle or not at_end:
        return math.nan
    base = statistics.median(at_middle)
    return (statistics.median(at_end) - base) / base


@dataclass
class Target:
    name: str
    measured: float | None  # None: could not be measured (see `note`)
    limit: float
    at_least: bool  # True: measured >= limit passes; False: measured <= limit passes
    unit: str = "×"
    note: str = ""

    @property
    def status(self) -> str:
        if self.measured is None or math.isnan(self.measured):
            return "N/A"
        ok = self.measured >= self.limit if self.at_least else self.measured <= self.limit
        return "PASS" if ok else "MISS"

    def render_value(self, value: float | None) -> str:
        if value is None or math.isnan(value):
            return "–"
        if self.unit == "%":
            return f"{value * 100:.1f}%"
        if self.unit == "MB":
            return f"{value:,.0f} MB"
        return f"{value:.2f}×"


def saturation(results: Iterable[LoadResult]) -> LoadResult | None:
    """The level with the highest throughput (the served capacity)."""
    levels = [r for r in results if r.ok]
    return max(levels, key=lambda r: r.throughput) if levels else None


def at_concurrency(results: Iterable[LoadResult], concurrency: int) -> LoadResult | None:
    return next((r for r in results if r.concurrency == concurrency), None)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return None
    return a / b


@dataclass
class Measurements:
    """Everything one run measured; any part may be missing (then its targets are N/A)."""

    ceiling: dict[str, float] = field(default_factory=dict)  # layout -> images/s
    ceiling_other_cpu: dict[str, float] = field(default_factory=dict)  # layout -> share
    served: list[LoadResult] = field(default_factory=list)
    rembg: list[LoadResult] = field(default_factory=list)
    rembg_error: str | None = None
    size_latency: dict[str, list[float]] = field(default_factory=dict)  # label -> seconds
    rss: dict[str, RssTrace] = field(default_factory=dict)  # server -> trace
    soak_growth: float | None = None
    soak_minutes: float = 0
    profiles: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> stage -> ms
    environment: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def best_ceiling(self) -> tuple[str, float] | None:
        if not self.ceiling:
            return None
        layout = max(self.ceiling, key=lambda name: self.ceiling[name])
        return layout, self.ceiling[layout]


SIZE_SMALL = "1 MP @1200"
SIZE_LARGE = "12 MP @1200"


def evaluate(m: Measurements) -> list[Target]:
    ours, theirs = saturation(m.served), saturation(m.rembg)
    ours_c1, theirs_c1 = at_concurrency(m.served, 1), at_concurrency(m.rembg, 1)
    best = m.best_ceiling
    rembg_note = m.rembg_error or ""
    small, large = m.size_latency.get(SIZE_SMALL), m.size_latency.get(SIZE_LARGE)
    trace = m.rss.get("ours")
    peak = trace.peak("c=8") if trace else None
    targets = [
        Target("served req/s at saturation / bare ceiling",
               _ratio(ours.throughput if ours else None, best[1] if best else None),
               MIN_CEILING_SHARE, at_least=True, unit="%"),
        Target("served req/s at saturation / rembg s at saturation",
               _ratio(ours.throughput if ours else None, theirs.throughput if theirs else None),
               MIN_REMBG_SPEEDUP, at_least=True, note=rembg_note),
        Target("p50 at concurrency 1 / rembg s p50 at concurrency 1",
               _ratio(ours_c1.latency_ms(50) if ours_c1 else None,
                      theirs_c1.latency_ms(50) if theirs_c1 else None),
               MAX_P50_VS_REMBG, at_least=False, note=rembg_note),
        Target("p50 12 MP @1200 / p50 1 MP @1200 (concurrency 1)",
               _ratio(percentile(large, 50) if large else None,
                      percentile(small, 50) if small else None),
               MAX_12MP_VS_1MP, at_least=False),
        Target("peak RSS of the service's process tree at concurrency 8",
               peak / MB if peak is not None else None, MAX_RSS_MB, at_least=False, unit="MB"),
    ]
    if m.soak_minutes:
        targets.append(Target(f"RSS growth over the second half of a {m.soak_minutes:g} min soak",
                              m.soak_growth, MAX_SOAK_GROWTH, at_least=False, unit="%"))
    return targets


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _share(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value * 100:.0f}%"


def _mb(value: int | None) -> str:
    return "–" if value is None else f"{value / MB:,.0f}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render(m: Measurements, title: str = "Performance benchmark") -> str:
    out = [f"# {title}", ""]
    if m.environment:
        out += [f"- {key}: {value}" for key, value in m.environment.items()]
        out.append("")
    out += _render_targets(m)
    out += _render_ceiling(m)
    out += _render_served(m)
    out += _render_rss(m)
    out += _render_sizes(m)
    out += _render_profiles(m)
    notes = [*contention_notes(m), *m.notes]
    if notes:
        out += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    return "\n".join(out).rstrip() + "\n"


def contention_notes(m: Measurements) -> list[str]:
    """A warning when other processes took a large share of the CPU during a measurement."""
    shares = [*m.ceiling_other_cpu.values(), *(r.other_cpu for r in [*m.served, *m.rembg])]
    shares = [share for share in shares if not math.isnan(share)]
    if not shares or max(shares) <= BUSY_MACHINE:
        return []
    return [f"Other processes used up to {max(shares) * 100:.0f}% of all cores during the "
            f"measurements (median {statistics.median(shares) * 100:.0f}%): absolute numbers "
            "understate this machine, and ratios between measurements taken under different "
            "loads are unreliable. Rerun on a quiet machine to judge the targets."]


def _render_targets(m: Measurements) -> list[str]:
    rows = []
    for target in evaluate(m):
        limit = ("≥ " if target.at_least else "≤ ") + target.render_value(target.limit)
        name = f"{target.name} ({target.note})" if target.note and target.status == "N/A" else (
            target.name)
        rows.append([name, target.render_value(target.measured), limit, target.status])
    return ["## Targets", "", *table(["target", "measured", "limit", "result"], rows), ""]


def _render_ceiling(m: Measurements) -> list[str]:
    if not m.ceiling:
        return ["## Bare onnxruntime ceiling", "", "Not measured.", ""]
    best = m.best_ceiling
    rows = [[layout, f"{rate:.2f}", f"{1000 / rate:.0f}" if rate else "–",
             _share(m.ceiling_other_cpu.get(layout)),
             "**best**" if best and layout == best[0] else ""]
            for layout, rate in m.ceiling.items()]
    return ["## Bare onnxruntime ceiling (u2netp, 1×3×320×320 float32, warm)", "",
            *table(["layout", "images/s", "ms/image", "other CPU", ""], rows), ""]


def _render_served(m: Measurements) -> list[str]:
    best = m.best_ceiling
    rows = []
    for result in [*m.served, *m.rembg]:
        share = _ratio(result.throughput, best[1] if best else None)
        errors = str(result.error_count)
        if result.errors:
            errors += " (" + ", ".join(f"{k}: {v}" for k, v in result.errors.most_common(3)) + ")"
        rows.append([
            result.server, str(result.concurrency), str(result.ok), f"{result.throughput:.2f}",
            _fmt(result.latency_ms(50)), _fmt(result.latency_ms(95)), _fmt(result.latency_ms(99)),
            errors, "–" if share is None else f"{share * 100:.0f}%",
            _fmt(result.mean_response_kb), _share(result.other_cpu),
        ])
    lines = ["## Served throughput and latency (1 MP JPEG → default PNG)", ""]
    lines += table(["server", "conc.", "ok", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors",
                    "of ceiling", "resp. KB", "other CPU"], rows)
    if m.rembg_error:
        lines += ["", f"rembg s: {m.rembg_error}"]
    return [*lines, ""]


def _render_rss(m: Measurements) -> list[str]:
    if not m.rss:
        return []
    rows = []
    for server, trace in m.rss.items():
        soak = trace.peak("soak") if server == "ours" else None
        rows.append([server, _mb(trace.last("idle")), _mb(trace.peak("c=8")),
                     _mb(trace.last("after")), _mb(soak)])
    return ["## Memory: total RSS of the process tree (MB, sampled every 0.5 s)", "",
            *table(["server", "idle (warm)", "peak at c=8", "after load", "peak in soak"], rows),
            ""]


def _render_sizes(m: Measurements) -> list[str]:
    if not m.size_latency:
        return []
    rows = [[label, str(len(values)), _fmt(percentile(values, 50) * 1000),
             _fmt(percentile(values, 95) * 1000)]
            for label, values in m.size_latency.items()]
    return ["## Input size: `max_width=1200`, default PNG, concurrency 1", "",
            *table(["input", "requests", "p50 ms", "p95 ms"], rows), ""]


def _render_profiles(m: Measurements) -> list[str]:
    if not m.profiles:
        return []
    header = ["request", *STAGES, "stages sum", "logged total"]
    rows = []
    for label, stages in m.profiles.items():
        stage_sum = sum(stages.get(stage, 0.0) for stage in STAGES)
        rows.append([label, *[_fmt(stages.get(stage), 1) for stage in STAGES],
                     _fmt(stage_sum, 1), _fmt(stages.get("duration_ms"), 1)])
    return ["## Per-stage profile (ms, median of the logged requests, from the JSON log)", "",
            *table(header, rows), ""]


def median_stages(lines: Iterable[dict], request_ids: Iterable[str]) -> dict[str, float]:
    """Median of each stage over the request-log lines whose request_id is in `request_ids`."""
    wanted = set(request_ids)
    chosen = [line for line in lines if line.get("request_id") in wanted]
    stages: dict[str, float] = {"requests": float(len(chosen))}
    for key in (*STAGES, "duration_ms"):
        values = [float(line[key]) for line in chosen if isinstance(line.get(key), int | float)]
        if values:
            stages[key] = statistics.median(values)
    return stages
