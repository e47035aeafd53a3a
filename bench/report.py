"""The pure half of bench/performance.py: what a run measured, its statistics and its Markdown.

No servers or models, so tests/unit/test_bench.py checks it directly.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from loadtests.summarize import fmt, percent, table

MB = 1_000_000
STAGES = ("decode", "preprocess", "inference", "compose", "encode")
API, MODEL, ARBITER, OTHER = "API worker", "model worker", "arbiter", "other"
ROLES = (API, MODEL, ARBITER, OTHER)
# Cache probes at concurrency 1, in the order sent: (their options, the X-Cache expected); a
# probe expecting a miss gets fresh bytes, the others the last miss's. Each is compared with the
# miss of the same options.
CACHE_PROBES: dict[str, tuple[dict[str, str], str]] = {
    "miss: fresh bytes, default PNG": ({}, "miss"),
    "hit: the same bytes and options again": ({}, "hit"),
    "mask: the same bytes, format=WEBP": ({"format": "WEBP"}, "mask"),
    "mask: the same bytes, PNG at max_width=1200": ({"max_width": "1200"}, "mask"),
    "miss: fresh bytes, format=WEBP": ({"format": "WEBP"}, "miss"),
    "miss: fresh bytes, PNG at max_width=1200": ({"max_width": "1200"}, "miss"),
}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linearly interpolated; NaN if empty."""
    return float(np.percentile(values, q)) if len(values) else math.nan


def process_role(cmdline: Sequence[str], is_root: bool) -> str:
    """Which part of a `bentoml serve` tree a process is: the process `bentoml serve` runs is
    the arbiter; BentoML 1.4 starts each worker with `--service-name <name>` (none: the entry
    service), `bg_remover` being the API and `segmenter` the model service."""
    if is_root:
        return ARBITER
    if "_bentoml_impl.worker.service" not in cmdline:
        return OTHER
    flags = [arg.split("=", 1) for arg in cmdline if arg.startswith("--service-name=")]
    names = [cmdline[i + 1] for i, arg in enumerate(cmdline[:-1]) if arg == "--service-name"]
    name = next((value for _, value in flags), names[0] if names else "bg_remover")
    return {"bg_remover": API, "segmenter": MODEL}.get(name, OTHER)


Snapshot = dict[int, tuple[str, float]]  # pid -> (role, CPU seconds)


def cpu_split(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds per role between two snapshots; a process that appeared in between counts
    from zero."""
    seconds: defaultdict[str, float] = defaultdict(float)
    for pid, (role, cpu) in after.items():
        seconds[role] += max(cpu - before.get(pid, (role, 0.0))[1], 0.0)
    return seconds


@dataclass
class Level:
    """One closed-loop load level against one server (or one layout's level)."""

    server: str
    concurrency: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # successful requests, seconds
    errors: Counter[str] = field(default_factory=Counter)
    sizes: list[int] = field(default_factory=list)
    cache: Counter[str] = field(default_factory=Counter)
    late: int = 0  # answered after the window: not counted, but the server did the work
    cpu: dict[str, float] = field(default_factory=dict)  # role -> CPU seconds over the level
    cpu_wall: float = math.nan
    peak_rss: int | None = None

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000

    def cpu_ms(self, role: str | None = None) -> float:
        """CPU ms per request answered (late ones included) of `role`, or of the whole tree."""
        answered = self.ok + sum(self.errors.values()) + self.late
        used = sum(self.cpu.values()) if role is None else self.cpu.get(role, math.nan)
        return used * 1000 / answered if answered and self.cpu else math.nan


@dataclass
class Bare:
    """One bare onnxruntime layout."""

    rate: float  # images/s
    run_ms: float  # median time of one session.run
    cpu_ms: float  # process CPU per image


@dataclass
class Mixed:
    """One locust run of the mixed workload against our service."""

    label: str
    seconds: float
    requests: int
    failures: int
    images: int  # ok requests of the /remove-background* endpoints
    p50_ms: float | None
    cache: dict[str, int] = field(default_factory=dict)


@dataclass
class Run:
    """Everything one run measured; a missing part leaves its section out."""

    environment: dict[str, str] = field(default_factory=dict)
    bare: dict[str, Bare] = field(default_factory=dict)
    served_layout: str = ""
    levels: list[Level] = field(default_factory=list)
    sizes: dict[str, list[float]] = field(default_factory=dict)
    cache: dict[str, list[float]] = field(default_factory=dict)
    mixed: list[Mixed] = field(default_factory=list)
    rss: dict[str, list[tuple[float, str, int]]] = field(default_factory=dict)
    profiles: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ceiling(self) -> float:
        return max((bare.rate for bare in self.bare.values()), default=math.nan)


def soak_growth(samples: Sequence[tuple[float, int]], window: float = 0.1) -> float:
    """RSS growth over the second half of a run: the median of the last `window` of it against
    the median of the `window` around its middle (a lone spike decides nothing)."""
    if len(samples) < 4:
        return math.nan
    start, end = samples[0][0], samples[-1][0]
    middle, width = (start + end) / 2, max((end - start) * window, 1e-9)
    around = [rss for t, rss in samples if abs(t - middle) <= width / 2]
    last = [rss for t, rss in samples if t >= end - width]
    if not around or not last:
        return math.nan
    return statistics.median(last) / statistics.median(around) - 1


def median_stages(lines: Iterable[dict], request_ids: Iterable[str]) -> dict[str, float]:
    """Median of each logged stage over the request-log lines of `request_ids`."""
    wanted = set(request_ids)
    chosen = [line for line in lines if line.get("request_id") in wanted]
    stages: dict[str, float] = {}
    for key in (*STAGES, "duration_ms"):
        values = [float(line[key]) for line in chosen if isinstance(line.get(key), int | float)]
        if values:
            stages[key] = statistics.median(values)
    return stages


def ms(values: Sequence[float], q: float, digits: int = 0) -> str:
    return fmt(percentile(values, q) * 1000, digits)


def document(title: str, facts: dict[str, str], body: list[str], notes: Sequence[str]) -> str:
    """A Markdown report: its title, its facts as a list, its body, and its notes if any."""
    lines = [f"# {title}", "", *(f"- {k}: {v}" for k, v in facts.items()), "", *body]
    lines += ["## Notes", "", *(f"- {note}" for note in notes)] if notes else []
    return "\n".join(lines).rstrip() + "\n"


RSS_PHASES = (("idle", True), ("c=8", False), ("after", True), ("soak", False))  # (phase, last)


def rss_at(trace: list[tuple[float, str, int]], phase: str, last: bool = False) -> str:
    values = [rss for _, p, rss in trace if p == phase]
    return fmt((values[-1] if last else max(values)) / MB) if values else "–"


def render(run: Run) -> str:
    out = table(
        "Bare onnxruntime ceiling (u2netp, 1×3×320×320, warm)",
        "layout | images/s | ms/image | p50 ms per run | CPU ms/image | ",
        [_bare_row(run, name, bare) for name, bare in run.bare.items()],
    )
    out += table(
        "Served throughput and latency (1 MP JPEG, fresh bytes → default PNG)",
        "server | conc. | ok | req/s | p50 ms | p95 ms | p99 ms | errors | of ceiling | resp. KB"
        " | X-Cache",
        [_served_row(run, level) for level in run.levels],
    )
    out += table(
        "CPU per request by process (ms, user + system)",
        "server | conc. | API worker /req | model worker /image | arbiter /req | other /req"
        " | total /req | cores busy",
        [_cpu_row(level) for level in run.levels if level.cpu] + _bare_cpu_row(run),
    )
    out += table(
        "Result cache at concurrency 1 (1 MP JPEG)",
        "request | n | p50 ms | p95 ms | same-options miss p50 / this p50",
        [_cache_row(run, probe) for probe in CACHE_PROBES] if run.cache else [],
    )
    out += _render_mixed(run)
    out += table(
        "Memory: total RSS of the process tree (MB, sampled every 0.5 s)",
        "server | idle (warm) | peak at c=8 | after load | peak in soak",
        [[name, *(rss_at(t, *phase) for phase in RSS_PHASES)] for name, t in run.rss.items()],
    )
    out += table(
        "Input size: `max_width=1200`, default PNG, concurrency 1",
        "input | requests | p50 ms | p95 ms",
        [[name, str(len(v)), ms(v, 50), ms(v, 95)] for name, v in run.sizes.items()],
    )
    out += table(
        "Per-stage profile (ms, median of the logged requests)",
        " | ".join(["request", *STAGES, "stages sum", "logged total"]),
        [_stage_row(name, stages) for name, stages in run.profiles.items()],
    )
    return document("Performance benchmark", run.environment, out, run.notes)


def _bare_row(run: Run, name: str, bare: Bare) -> list[str]:
    marks = ("**best**" if bare.rate == run.ceiling else "", "served" * (name == run.served_layout))
    row = [name, f"{bare.rate:.2f}", fmt(1000 / bare.rate), fmt(bare.run_ms), fmt(bare.cpu_ms)]
    return [*row, " ".join(mark for mark in marks if mark)]


def _served_row(run: Run, level: Level) -> list[str]:
    errors = ", ".join(f"{kind} ×{n}" for kind, n in level.errors.items()) or "0"
    size = fmt(statistics.fmean(level.sizes) / 1000) if level.sizes else "–"
    cache = ", ".join(f"{name} {n}" for name, n in sorted(level.cache.items())) or "–"
    share = percent(level.rps, run.ceiling, 0)
    percentiles = [ms(level.latencies, q) for q in (50, 95, 99)]
    head = [level.server, str(level.concurrency), str(level.ok), f"{level.rps:.2f}"]
    return [*head, *percentiles, errors, share, size, cache]


def _cpu_row(level: Level) -> list[str]:
    by_role = [fmt(level.cpu_ms(role), 1) for role in ROLES]
    cores = fmt(sum(level.cpu.values()) / level.cpu_wall, 2)
    return [level.server, str(level.concurrency), *by_role, fmt(level.cpu_ms(), 1), cores]


def _bare_cpu_row(run: Run) -> list[list[str]]:
    if run.served_layout not in run.bare:
        return []
    cpu = fmt(run.bare[run.served_layout].cpu_ms, 1)
    return [[f"bare onnxruntime, {run.served_layout}", "1", "–", cpu, "–", "–", cpu, "–"]]


def _cache_row(run: Run, probe: str) -> list[str]:
    miss = next(name for name, v in CACHE_PROBES.items() if v == (CACHE_PROBES[probe][0], "miss"))
    values, baseline = run.cache.get(probe, []), run.cache.get(miss, [])
    speedup = percentile(baseline, 50) / percentile(values, 50) if values and baseline else None
    return [probe, str(len(values)), ms(values, 50, 1), ms(values, 95, 1), fmt(speedup, 1) + "×"]


def _stage_row(name: str, stages: dict[str, float]) -> list[str]:
    total = sum(stages.get(stage, 0.0) for stage in STAGES)
    by_stage = [fmt(stages.get(stage), 1) for stage in STAGES]
    return [name, *by_stage, fmt(total, 1), fmt(stages.get("duration_ms"), 1)]


def _render_mixed(run: Run) -> list[str]:
    rows = []
    for m in run.mixed:
        ok = m.requests - m.failures
        cache = ", ".join(f"{name} {n}" for name, n in sorted(m.cache.items())) or "–"
        rates = [f"{ok / m.seconds:.2f}", f"{m.images / m.seconds:.2f}", fmt(m.p50_ms), cache]
        total, hits = sum(m.cache.values()), m.cache.get("hit", 0)
        shares = [percent(hits, total, 0), percent(hits + m.cache.get("mask", 0), total, 0)]
        rows.append([m.label, f"{m.seconds:g}", str(ok), str(m.failures), *rates, *shares])
    lines = table(
        "Result cache under mixed load (loadtests/locustfile.py, 30% replayed requests)",
        "run | s | ok | failures | req/s | image req/s | p50 ms | X-Cache | hit ratio"
        " | model skipped",
        rows,
    )
    if len(run.mixed) == 2:
        on, off = run.mixed
        gain = (on.requests - on.failures) / max(off.requests - off.failures, 1)
        images = f"{on.images / max(off.images, 1):.2f}× the image requests/s"
        lines += [f"With the cache: {gain:.2f}× the req/s ({images}).", ""]
    return lines


# --------------------------------------------------------------------------- layouts


def layout_env(
    workers: int, threads: int, spinning: bool, nice: int, runs: int = 1
) -> dict[str, str]:
    """The settings `--layouts` varies, as the service reads them."""
    return {
        "MODEL_WORKERS": str(workers),
        "MODEL_THREADS": str(threads),
        "MODEL_THREAD_SPINNING": str(spinning).lower(),
        "API_WORKER_NICE": str(nice),
        "MODEL_PARALLEL_RUNS": str(runs),
    }


def pooled(levels: Sequence[Level]) -> Level:
    """The rounds of one level as one: every answer over every window, CPU over every request."""
    merged = Level(levels[0].server, levels[0].concurrency, sum(lv.seconds for lv in levels))
    for level in levels:
        merged.latencies += level.latencies
        merged.errors += level.errors
        merged.late += level.late
        for role, seconds in level.cpu.items():
            merged.cpu[role] = merged.cpu.get(role, 0.0) + seconds
    merged.peak_rss = max((level.peak_rss or 0 for level in levels), default=0) or None
    return merged


def render_layouts(
    results: Sequence[tuple[dict[str, str], Level]],
    bare: dict[str, Bare],
    environment: dict[str, str],
    notes: Sequence[str],
) -> str:
    """One row per layout with its rounds pooled; *p50 ms at c=1* is the short level run before
    concurrency 8. Best: the most req/s, or within 1% of it the lower p50."""
    groups: dict[tuple[tuple[str, str], ...], list[Level]] = {}
    for env, level in results:
        groups.setdefault(tuple(env.items()), []).append(level)
    rows = []
    for settings, levels in groups.items():
        loaded = pooled([lv for lv in levels if lv.concurrency > 1])
        alone = [v for lv in levels if lv.concurrency == 1 for v in lv.latencies]
        rounds = " / ".join(f"{lv.rps:.2f}" for lv in levels if lv.concurrency > 1)
        rss = fmt(loaded.peak_rss / MB) if loaded.peak_rss else "–"
        cpu = [fmt(loaded.cpu_ms(role), 1) for role in (API, MODEL)]
        head = [*(value for _, value in settings), f"{loaded.rps:.2f}", rounds]
        p50s = [ms(loaded.latencies, 50), ms(loaded.latencies, 95), ms(alone, 50)]
        rows.append((loaded, [*head, *p50s, *cpu, rss, str(sum(loaded.errors.values()))]))
    top = max((lv.rps for lv, _ in rows), default=math.nan)
    best = min((r for r in rows if r[0].rps >= top * 0.99), key=lambda r: r[0].ms(50), default=None)
    out = table(
        "Concurrency 8, 1 MP JPEG with fresh bytes → default PNG",
        " | ".join(layout_env(1, 1, False, 0)) + " | req/s | req/s per round | p50 ms | p95 ms"
        " | p50 ms at c=1 | API CPU ms/req | model CPU ms/image | peak RSS MB | errors | ",
        [[*row[1], "**best**" if row is best else ""] for row in rows],
    )
    out += table(
        "Bare onnxruntime, one image at a time",
        "layout | images/s | CPU ms/image",
        [[name, f"{b.rate:.2f}", fmt(b.cpu_ms, 1)] for name, b in bare.items()],
    )
    return document("Serving layouts", environment, out, notes)
