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
# The stages the API worker runs itself (inference is the wait for the model service).
API_STAGES = ("decode", "preprocess", "compose", "encode")

# The targets, as the brief states them.
MIN_CEILING_SHARE = 0.85  # served req/s at saturation / bare onnxruntime images/s
MIN_REMBG_SPEEDUP = 1.5  # our req/s at saturation / rembg s req/s at saturation
MAX_P50_VS_REMBG = 0.75  # our p50 at concurrency 1 / rembg s p50 at concurrency 1
MAX_P50_VS_BARE = 1.15  # our p50 at concurrency 1 / bare single-image inference p50
MAX_API_CPU_MS = 45.0  # API worker CPU per request at CPU_LEVEL
MAX_MODEL_CPU_VS_BARE = 1.05  # model worker CPU per image / bare onnxruntime CPU per image
MIN_HIT_SPEEDUP = 50.0  # p50 of a miss / p50 of a full-result hit
MIN_MASK_SPEEDUP = 2.0  # p50 of a miss / p50 of a mask hit
MIN_MIXED_CACHE_GAIN = 1.3  # mixed-load req/s with the cache / without
MAX_12MP_VS_1MP = 1.3  # p50 of 12 MP at max_width=1200 / p50 of 1 MP at max_width=1200
MAX_RSS_MB = 1500  # whole process tree, peak during concurrency 8
MAX_SOAK_GROWTH = 0.05  # RSS growth over the second half of the soak
BUSY_MACHINE = 0.25  # other processes' share of all cores above which a run is flagged
CPU_LEVEL = 4  # the load level whose CPU split the CPU targets are judged on

# Parts of a `bentoml serve` process tree, and the service names service.py gives them.
API_ROLE, MODEL_ROLE, ARBITER_ROLE, OTHER_ROLE = "API worker", "model worker", "arbiter", "other"
ROLES = (API_ROLE, MODEL_ROLE, ARBITER_ROLE, OTHER_ROLE)
API_SERVICE, MODEL_SERVICE = "bg_remover", "segmenter"
BENTOML_WORKER_MODULE = "_bentoml_impl.worker.service"

# Cache latency probes at concurrency 1, in the order each fresh input is sent.
CACHE_MISS = "miss"
CACHE_HIT = "hit"
CACHE_MASK = "mask"
CACHE_MASK_PNG = "mask, PNG"
CACHE_MISS_WEBP = "miss, WEBP"
CACHE_MISS_PNG = "miss, PNG"
CACHE_PROBES: dict[str, str] = {
    CACHE_MISS: "miss: fresh bytes, default PNG",
    CACHE_HIT: "hit: the same bytes and options again",
    CACHE_MASK: "mask: the same bytes, format=WEBP",
    CACHE_MASK_PNG: "mask: the same bytes, PNG at max_width=1200",
    CACHE_MISS_WEBP: "miss: fresh bytes, format=WEBP",
    CACHE_MISS_PNG: "miss: fresh bytes, PNG at max_width=1200",
}
# Each probe is compared with the miss of the same options: what the cache saves.
CACHE_BASELINES: dict[str, str] = {
    CACHE_MISS: CACHE_MISS,
    CACHE_HIT: CACHE_MISS,
    CACHE_MASK: CACHE_MISS_WEBP,
    CACHE_MASK_PNG: CACHE_MISS_PNG,
    CACHE_MISS_WEBP: CACHE_MISS_WEBP,
    CACHE_MISS_PNG: CACHE_MISS_PNG,
}
CACHE_ON, CACHE_OFF = "cache on", "cache off"


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


def process_role(
    cmdline: Sequence[str],
    is_root: bool,
    api_service: str = API_SERVICE,
    model_service: str = MODEL_SERVICE,
) -> str:
    """Which part of a `bentoml serve` tree a process is, from its command line.

    The process `bentoml serve` itself runs is the arbiter: it holds the sockets and forks the
    workers. BentoML 1.4 starts every service worker as `python -m _bentoml_impl.worker.service
    <target> --service-name <name> … --worker-id <n>`; a worker without `--service-name` can
    only be the entry service, which here is the API. Anything else (a helper process a library
    forks) is `other`, so that it is shown rather than silently added to a worker.
    """
    if is_root:
        return ARBITER_ROLE
    if BENTOML_WORKER_MODULE not in cmdline:
        return OTHER_ROLE
    name = _option(cmdline, "--service-name")
    if name is None or name == api_service:
        return API_ROLE
    return MODEL_ROLE if name == model_service else OTHER_ROLE


def _option(cmdline: Sequence[str], flag: str) -> str | None:
    for index, arg in enumerate(cmdline):
        if arg == flag and index + 1 < len(cmdline):
            return cmdline[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


@dataclass
class CpuSplit:
    """CPU time (user + system, children excluded) a server's processes used over one load
    level, by role, and how many requests the server answered meanwhile."""

    seconds: dict[str, float]  # role -> CPU seconds
    requests: int  # answered over the span, late ones included (each one 1 MP image)
    wall_s: float
    lost: int = 0  # processes that exited during the span (their CPU time is missing)

    def ms_each(self, role: str) -> float:
        """CPU ms of `role` per request (the model worker: per image, one image a request)."""
        if not self.requests or role not in self.seconds:
            return math.nan
        return self.seconds[role] * 1000 / self.requests

    @property
    def total_ms_each(self) -> float:
        return sum(self.seconds.values()) * 1000 / self.requests if self.requests else math.nan

    @property
    def cores(self) -> float:
        """Cores kept busy on average over the span."""
        return sum(self.seconds.values()) / self.wall_s if self.wall_s > 0 else math.nan

    def cores_of(self, role: str) -> float:
        """Cores `role` kept busy on average over the span."""
        if self.wall_s <= 0 or role not in self.seconds:
            return math.nan
        return self.seconds[role] / self.wall_s


def cpu_split(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    requests: int,
    wall_s: float,
) -> CpuSplit:
    """The CPU each role used between two snapshots of pid -> (role, CPU seconds).

    A process that appeared in between counts from zero (all its CPU fell in the span); one
    that exited is lost (its CPU cannot be read any more) and counted in `lost`.
    """
    seconds: dict[str, float] = {}
    for pid, (role, cpu) in after.items():
        _, start = before.get(pid, (role, 0.0))
        seconds[role] = seconds.get(role, 0.0) + max(cpu - start, 0.0)
    lost = sum(1 for pid in before if pid not in after)
    return CpuSplit(seconds, requests, wall_s, lost)


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
    cache: Counter[str] = field(default_factory=Counter)  # X-Cache of the counted answers
    late: int = 0  # answered after the window closed: not counted, but the server did the work
    cpu: CpuSplit | None = None
    peak_rss: int | None = None  # bytes, the server's process tree, where sampled

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
class MixedRun:
    """One locust run of the mixed workload (loadtests/locustfile.py) against our service."""

    label: str  # CACHE_ON or CACHE_OFF
    users: int
    seconds: float
    requests: int  # every request locust sent, failures included
    failures: int
    image_requests: int  # ok requests of the /remove-background* endpoints
    p50_ms: float | None  # locust's aggregated median (its histogram: 2 significant digits)
    cache: dict[str, int] = field(default_factory=dict)  # X-Cache -> count
    other_cpu: float = math.nan
    cpu: CpuSplit | None = None  # the server's processes over the run
    client_cores: float = math.nan  # locust's own CPU over the run ÷ its length

    @property
    def throughput(self) -> float:
        """Successful requests per second over the run."""
        return (self.requests - self.failures) / self.seconds if self.seconds > 0 else math.nan

    @property
    def image_throughput(self) -> float:
        return self.image_requests / self.seconds if self.seconds > 0 else math.nan

    def share(self, *outcomes: str) -> float:
        total = sum(self.cache.values())
        return sum(self.cache.get(name, 0) for name in outcomes) / total if total else math.nan


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
        if self.unit == "ms":
            return f"{value:.1f} ms"
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


def _p50_ms(values: Sequence[float] | None) -> float | None:
    return percentile(values, 50) * 1000 if values else None


@dataclass
class Measurements:
    """Everything one run measured; any part may be missing (then its targets are N/A)."""

    ceiling: dict[str, float] = field(default_factory=dict)  # layout -> images/s
    ceiling_other_cpu: dict[str, float] = field(default_factory=dict)  # layout -> share
    ceiling_cpu_ms: dict[str, float] = field(default_factory=dict)  # layout -> CPU ms/image
    ceiling_run_ms: dict[str, float] = field(default_factory=dict)  # layout -> p50 ms per run
    served_layout: str | None = None  # the ceiling layout the service runs one image at a time
    served: list[LoadResult] = field(default_factory=list)
    rembg: list[LoadResult] = field(default_factory=list)
    rembg_error: str | None = None
    size_latency: dict[str, list[float]] = field(default_factory=dict)  # label -> seconds
    cache_latency: dict[str, list[float]] = field(default_factory=dict)  # probe -> seconds
    mixed: list[MixedRun] = field(default_factory=list)
    mixed_error: str | None = None
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

    @property
    def bare_single_ms(self) -> float | None:
        """Bare inference of one image in the served layout: p50 ms per run."""
        return self.ceiling_run_ms.get(self.served_layout) if self.served_layout else None

    @property
    def bare_cpu_ms(self) -> float | None:
        """Bare CPU ms per image in the served layout."""
        return self.ceiling_cpu_ms.get(self.served_layout) if self.served_layout else None

    def mixed_run(self, label: str) -> MixedRun | None:
        return next((run for run in self.mixed if run.label == label), None)


SIZE_SMALL = "1 MP @1200"
SIZE_LARGE = "12 MP @1200"


def level_label(concurrency: int) -> str:
    """The profile label of a load level's requests."""
    return f"1 MP default, c={concurrency}"


def evaluate(m: Measurements) -> list[Target]:
    ours, theirs = saturation(m.served), saturation(m.rembg)
    ours_c1, theirs_c1 = at_concurrency(m.served, 1), at_concurrency(m.rembg, 1)
    ours_p50 = ours_c1.latency_ms(50) if ours_c1 else None
    best = m.best_ceiling
    rembg_note = m.rembg_error or ""
    small, large = m.size_latency.get(SIZE_SMALL), m.size_latency.get(SIZE_LARGE)
    trace = m.rss.get("ours")
    peak = trace.peak("c=8") if trace else None
    level = at_concurrency(m.served, CPU_LEVEL)
    cpu = level.cpu if level else None
    on, off = m.mixed_run(CACHE_ON), m.mixed_run(CACHE_OFF)
    targets = [
        Target(
            "served req/s at saturation / bare ceiling",
            _ratio(ours.throughput if ours else None, best[1] if best else None),
            MIN_CEILING_SHARE,
            at_least=True,
            unit="%",
        ),
        Target(
            "served req/s at saturation / rembg s at saturation",
            _ratio(ours.throughput if ours else None, theirs.throughput if theirs else None),
            MIN_REMBG_SPEEDUP,
            at_least=True,
            note=rembg_note,
        ),
        Target(
            "p50 at concurrency 1 / rembg s p50 at concurrency 1",
            _ratio(ours_p50, theirs_c1.latency_ms(50) if theirs_c1 else None),
            MAX_P50_VS_REMBG,
            at_least=False,
            note=rembg_note,
        ),
        Target(
            "p50 at concurrency 1 / bare single-image inference (served layout)",
            _ratio(ours_p50, m.bare_single_ms),
            MAX_P50_VS_BARE,
            at_least=False,
        ),
        Target(
            f"API worker CPU per request at concurrency {CPU_LEVEL}",
            cpu.ms_each(API_ROLE) if cpu else None,
            MAX_API_CPU_MS,
            at_least=False,
            unit="ms",
        ),
        Target(
            f"model worker CPU per image at concurrency {CPU_LEVEL} / bare (served layout)",
            _ratio(cpu.ms_each(MODEL_ROLE) if cpu else None, m.bare_cpu_ms),
            MAX_MODEL_CPU_VS_BARE,
            at_least=False,
        ),
        Target(
            "cache: p50 of a miss / p50 of a full-result hit (concurrency 1)",
            cache_speedup(m, CACHE_HIT),
            MIN_HIT_SPEEDUP,
            at_least=True,
        ),
        Target(
            "cache: p50 of a WEBP miss / p50 of a WEBP mask hit (concurrency 1)",
            cache_speedup(m, CACHE_MASK),
            MIN_MASK_SPEEDUP,
            at_least=True,
        ),
        Target(
            "mixed load, 30% replayed requests: req/s with the cache / without",
            _ratio(on.throughput if on else None, off.throughput if off else None),
            MIN_MIXED_CACHE_GAIN,
            at_least=True,
            note=m.mixed_error or "",
        ),
        Target(
            "p50 12 MP @1200 / p50 1 MP @1200 (concurrency 1)",
            _ratio(
                percentile(large, 50) if large else None, percentile(small, 50) if small else None
            ),
            MAX_12MP_VS_1MP,
            at_least=False,
        ),
        Target(
            "peak RSS of the service's process tree at concurrency 8",
            peak / MB if peak is not None else None,
            MAX_RSS_MB,
            at_least=False,
            unit="MB",
        ),
    ]
    if m.soak_minutes:
        targets.append(
            Target(
                f"RSS growth over the second half of a {m.soak_minutes:g} min soak",
                m.soak_growth,
                MAX_SOAK_GROWTH,
                at_least=False,
                unit="%",
            )
        )
    return targets


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:,.{digits}f}"
    # a small negative value rounds to "-0.0", which reads as a sign that means something
    return text[1:] if text.startswith("-") and float(text.replace(",", "")) == 0 else text


def _share(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{_fmt(value * 100)}%"


def _mb(value: int | None) -> str:
    return "–" if value is None else f"{value / MB:,.0f}"


def _counts(counter: Counter[str] | dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items())) or "–"


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
    out += _render_cpu(m)
    out += _render_api_stages(m)
    out += _render_cache(m)
    out += _render_mixed(m)
    out += _render_rss(m)
    out += _render_sizes(m)
    out += _render_profiles(m)
    notes = [*contention_notes(m), *m.notes]
    if notes:
        out += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    return "\n".join(out).rstrip() + "\n"


def contention_notes(m: Measurements) -> list[str]:
    """A warning when other processes took a large share of the CPU during a measurement."""
    shares = [
        *m.ceiling_other_cpu.values(),
        *(r.other_cpu for r in [*m.served, *m.rembg]),
        *(run.other_cpu for run in m.mixed),
    ]
    return _contention(shares)


def _contention(shares: Iterable[float]) -> list[str]:
    shares = [share for share in shares if not math.isnan(share)]
    if not shares or max(shares) <= BUSY_MACHINE:
        return []
    return [
        f"Other processes used up to {max(shares) * 100:.0f}% of all cores during the "
        f"measurements (median {statistics.median(shares) * 100:.0f}%): absolute numbers "
        "understate the hardware, and ratios between measurements taken under different "
        "loads are unreliable. Rerun on a quiet machine to judge the targets."
    ]


def _render_targets(m: Measurements) -> list[str]:
    rows = []
    for target in evaluate(m):
        limit = ("≥ " if target.at_least else "≤ ") + target.render_value(target.limit)
        name = (
            f"{target.name} ({target.note})"
            if target.note and target.status == "N/A"
            else (target.name)
        )
        rows.append([name, target.render_value(target.measured), limit, target.status])
    return ["## Targets", "", *table(["target", "measured", "limit", "result"], rows), ""]


def _render_ceiling(m: Measurements) -> list[str]:
    if not m.ceiling:
        return ["## Bare onnxruntime ceiling", "", "Not measured.", ""]
    best = m.best_ceiling
    rows = []
    for layout, rate in m.ceiling.items():
        marks = [
            mark
            for mark, on in (
                ("**best**", best and layout == best[0]),
                ("served", layout == m.served_layout),
            )
            if on
        ]
        rows.append(
            [
                layout,
                f"{rate:.2f}",
                f"{1000 / rate:.0f}" if rate else "–",
                _fmt(m.ceiling_run_ms.get(layout)),
                _fmt(m.ceiling_cpu_ms.get(layout)),
                _share(m.ceiling_other_cpu.get(layout)),
                ", ".join(marks),
            ]
        )
    return [
        "## Bare onnxruntime ceiling (u2netp, 1×3×320×320 float32, warm)",
        "",
        *table(
            ["layout", "images/s", "ms/image", "p50 ms per run", "CPU ms/image", "other CPU", ""],
            rows,
        ),
        "",
    ]


def _render_served(m: Measurements) -> list[str]:
    best = m.best_ceiling
    rows = []
    for result in [*m.served, *m.rembg]:
        share = _ratio(result.throughput, best[1] if best else None)
        errors = str(result.error_count)
        if result.errors:
            errors += " (" + ", ".join(f"{k}: {v}" for k, v in result.errors.most_common(3)) + ")"
        rows.append(
            [
                result.server,
                str(result.concurrency),
                str(result.ok),
                f"{result.throughput:.2f}",
                _fmt(result.latency_ms(50)),
                _fmt(result.latency_ms(95)),
                _fmt(result.latency_ms(99)),
                errors,
                "–" if share is None else f"{share * 100:.0f}%",
                _fmt(result.mean_response_kb),
                _counts(result.cache),
                _share(result.other_cpu),
            ]
        )
    lines = ["## Served throughput and latency (1 MP JPEG, fresh bytes → default PNG)", ""]
    lines += table(
        [
            "server",
            "conc.",
            "ok",
            "req/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "errors",
            "of ceiling",
            "resp. KB",
            "X-Cache",
            "other CPU",
        ],
        rows,
    )
    if m.rembg_error:
        lines += ["", f"rembg s: {m.rembg_error}"]
    return [*lines, ""]


def _render_cpu(m: Measurements) -> list[str]:
    measured = [r for r in [*m.served, *m.rembg] if r.cpu is not None]
    if not measured:
        return []
    rows = []
    for result in measured:
        cpu = result.cpu
        assert cpu is not None
        rows.append(
            [
                result.server,
                str(result.concurrency),
                str(cpu.requests),
                *[_fmt(cpu.ms_each(role), 1) for role in ROLES],
                _fmt(cpu.total_ms_each, 1),
                _fmt(cpu.cores, 2),
            ]
        )
    if m.bare_cpu_ms is not None:
        rows.append(
            [
                f"bare onnxruntime, {m.served_layout}",
                "1",
                "–",
                "–",
                _fmt(m.bare_cpu_ms, 1),
                "–",
                "–",
                _fmt(m.bare_cpu_ms, 1),
                "–",
            ]
        )
    lines = [
        "## CPU per request by process (ms, user + system, children excluded)",
        "",
        *table(
            [
                "server",
                "conc.",
                "requests",
                "API worker /req",
                "model worker /image",
                "arbiter /req",
                "other /req",
                "total /req",
                "cores busy",
            ],
            rows,
        ),
        "",
    ]
    lost = sum(r.cpu.lost for r in measured if r.cpu)
    if lost:
        lines += [f"{lost} process(es) exited during a level: their CPU time is missing.", ""]
    return lines


def api_stage_rest(cpu_ms: float | None, stages: dict[str, float]) -> float | None:
    """API CPU per request minus the API worker's own stages: HTTP, multipart, the cache,
    the hop to the model service and the rest. None when a part is missing."""
    if cpu_ms is None or math.isnan(cpu_ms) or any(s not in stages for s in API_STAGES):
        return None
    return cpu_ms - sum(stages[s] for s in API_STAGES)


def _render_api_stages(m: Measurements) -> list[str]:
    """The API worker's CPU per request at concurrency 1 and at CPU_LEVEL, split by stage.

    Stage times are wall times, so they are read where a request has the cores to itself
    (concurrency 1); under load they also hold the waits for a core while the model runs.
    """
    level = at_concurrency(m.served, CPU_LEVEL)
    single = at_concurrency(m.served, 1)
    stages = m.profiles.get(level_label(1))
    if level is None or level.cpu is None or not stages:
        return []
    cpu_ms = level.cpu.ms_each(API_ROLE)
    single_ms = single.cpu.ms_each(API_ROLE) if single and single.cpu else None
    rest_name = "HTTP, multipart and the rest"
    rows = [
        [
            name,
            _fmt(stages.get(name), 1),
            _fmt(stages.get(name), 1),
            _share(_ratio(stages.get(name), cpu_ms)),
        ]
        for name in API_STAGES
    ]
    rest = api_stage_rest(cpu_ms, stages)
    rows.append(
        [
            rest_name,
            _fmt(api_stage_rest(single_ms, stages), 1),
            _fmt(rest, 1),
            _share(_ratio(rest, cpu_ms)),
        ]
    )
    rows.append(["**API worker CPU per request**", _fmt(single_ms, 1), _fmt(cpu_ms, 1), "100%"])
    return [
        "## API worker CPU by stage (ms per request)",
        "",
        *table(
            [
                "part",
                "at concurrency 1",
                f"at concurrency {CPU_LEVEL}",
                f"share at concurrency {CPU_LEVEL}",
            ],
            rows,
        ),
        "",
        "Stages: median wall time of the concurrency-1 requests in the log, where a request "
        "has the cores to itself (under load a stage's wall time also holds waits for a "
        f"core), in both columns. {rest_name} = the API worker's CPU per request at that "
        "level minus the stages: HTTP, multipart parsing, the cache, the hop to the model "
        "service, logging, and the worker's own background work spread over the requests "
        "(more of it per request when fewer requests come).",
        "",
    ]


def cache_speedup(m: Measurements, probe: str) -> float | None:
    """p50 of the miss with the same options / p50 of this probe."""
    return _ratio(
        _p50_ms(m.cache_latency.get(CACHE_BASELINES[probe])), _p50_ms(m.cache_latency.get(probe))
    )


def _render_cache(m: Measurements) -> list[str]:
    if not m.cache_latency:
        return []
    rows = []
    for probe, label in CACHE_PROBES.items():
        values = m.cache_latency.get(probe, [])
        speedup = cache_speedup(m, probe)
        rows.append(
            [
                label,
                str(len(values)),
                _fmt(_p50_ms(values), 1),
                _fmt(percentile(values, 95) * 1000 if values else None, 1),
                "–" if speedup is None else f"{speedup:.1f}×",
            ]
        )
    return [
        "## Result cache at concurrency 1 (1 MP JPEG)",
        "",
        *table(["request", "n", "p50 ms", "p95 ms", "same-options miss p50 / this p50"], rows),
        "",
    ]


def _render_mixed(m: Measurements) -> list[str]:
    if not m.mixed and not m.mixed_error:
        return []
    lines = [
        "## Result cache under mixed load (loadtests/locustfile.py, 30% replayed requests)",
        "",
    ]
    rows = [
        [
            run.label,
            str(run.users),
            f"{run.seconds:g}",
            str(run.requests - run.failures),
            str(run.failures),
            f"{run.throughput:.2f}",
            f"{run.image_throughput:.2f}",
            _fmt(run.p50_ms),
            _counts(run.cache),
            _share(run.share("hit")),
            _share(run.share("hit", "mask")),
            *(
                _fmt(run.cpu.cores_of(role) if run.cpu else None, 2)
                for role in (API_ROLE, MODEL_ROLE)
            ),
            _fmt(run.client_cores, 2),
            _share(run.other_cpu),
        ]
        for run in m.mixed
    ]
    if rows:
        lines += table(
            [
                "run",
                "users",
                "s",
                "ok",
                "failures",
                "req/s",
                "image req/s",
                "p50 ms",
                "X-Cache",
                "hit ratio",
                "model skipped",
                "API worker cores",
                "model worker cores",
                "locust cores",
                "other CPU",
            ],
            rows,
        )
    on, off = m.mixed_run(CACHE_ON), m.mixed_run(CACHE_OFF)
    if on and off:
        gain = _ratio(on.throughput, off.throughput)
        image_gain = _ratio(on.image_throughput, off.image_throughput)
        lines += [
            "",
            f"With the cache: {_fmt(gain, 2)}× the req/s "
            f"({_fmt(image_gain, 2)}× the image requests/s).",
        ]
    if m.mixed_error:
        lines += ["", f"Mixed load: {m.mixed_error}"]
    return [*lines, ""]


def _render_rss(m: Measurements) -> list[str]:
    if not m.rss:
        return []
    rows = []
    for server, trace in m.rss.items():
        soak = trace.peak("soak") if server == "ours" else None
        rows.append(
            [
                server,
                _mb(trace.last("idle")),
                _mb(trace.peak("c=8")),
                _mb(trace.last("after")),
                _mb(soak),
            ]
        )
    return [
        "## Memory: total RSS of the process tree (MB, sampled every 0.5 s)",
        "",
        *table(["server", "idle (warm)", "peak at c=8", "after load", "peak in soak"], rows),
        "",
    ]


def _render_sizes(m: Measurements) -> list[str]:
    if not m.size_latency:
        return []
    rows = [
        [
            label,
            str(len(values)),
            _fmt(percentile(values, 50) * 1000),
            _fmt(percentile(values, 95) * 1000),
        ]
        for label, values in m.size_latency.items()
    ]
    return [
        "## Input size: `max_width=1200`, default PNG, concurrency 1",
        "",
        *table(["input", "requests", "p50 ms", "p95 ms"], rows),
        "",
    ]


def _render_profiles(m: Measurements) -> list[str]:
    if not m.profiles:
        return []
    header = ["request", *STAGES, "stages sum", "logged total"]
    rows = []
    for label, stages in m.profiles.items():
        stage_sum = sum(stages.get(stage, 0.0) for stage in STAGES)
        rows.append(
            [
                label,
                *[_fmt(stages.get(stage), 1) for stage in STAGES],
                _fmt(stage_sum, 1),
                _fmt(stages.get("duration_ms"), 1),
            ]
        )
    return [
        "## Per-stage profile (ms, median of the logged requests, from the JSON log)",
        "",
        *table(header, rows),
        "",
    ]


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


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Layout:
    """One serving layout: the settings `--layouts` varies."""

    workers: int
    threads: int
    spinning: bool
    nice: int
    parallel_runs: int = 1  # MODEL_PARALLEL_RUNS: a batch as single-thread runs side by side

    @property
    def env(self) -> dict[str, str]:
        return {
            "MODEL_WORKERS": str(self.workers),
            "MODEL_THREADS": str(self.threads),
            "MODEL_THREAD_SPINNING": str(self.spinning).lower(),
            "API_WORKER_NICE": str(self.nice),
            "MODEL_PARALLEL_RUNS": str(self.parallel_runs),
        }

    @property
    def label(self) -> str:
        return " ".join(f"{key}={value}" for key, value in self.env.items())


@dataclass
class LayoutSummary:
    """A layout's load levels pooled over the rounds: concurrency 8 (`results`), and the
    shorter concurrency-1 level (`singles`) that shows what the layout costs a lone request."""

    layout: Layout
    results: list[LoadResult]
    singles: list[LoadResult] = field(default_factory=list)

    @property
    def single_p50_ms(self) -> float:
        return percentile([v for r in self.singles for v in r.latencies_s], 50) * 1000

    @property
    def throughput(self) -> float:
        seconds = sum(r.duration_s for r in self.results)
        return sum(r.ok for r in self.results) / seconds if seconds else math.nan

    @property
    def latencies_s(self) -> list[float]:
        return [value for r in self.results for value in r.latencies_s]

    @property
    def peak_rss_mb(self) -> float:
        peaks = [r.peak_rss for r in self.results if r.peak_rss is not None]
        return max(peaks) / 1e6 if peaks else math.nan

    def cpu_ms(self, role: str) -> float:
        splits = [r.cpu for r in self.results if r.cpu is not None]
        requests = sum(split.requests for split in splits)
        if not requests:
            return math.nan
        return sum(split.seconds.get(role, 0.0) for split in splits) * 1000 / requests


def summarize_layouts(results: Iterable[tuple[Layout, LoadResult]]) -> list[LayoutSummary]:
    """One summary per layout, in the order the layouts were first run; concurrency-1 levels
    go to `singles`, the others to `results`."""
    pooled: dict[Layout, LayoutSummary] = {}
    for layout, result in results:
        summary = pooled.setdefault(layout, LayoutSummary(layout, []))
        (summary.singles if result.concurrency == 1 else summary.results).append(result)
    return list(pooled.values())


def best_layout(summaries: Sequence[LayoutSummary]) -> LayoutSummary | None:
    """The layout with the most req/s; on a tie (within 1%) the lower p50."""
    ranked = [s for s in summaries if s.latencies_s]
    if not ranked:
        return None
    top = max(s.throughput for s in ranked)
    close = [s for s in ranked if s.throughput >= top * 0.99]
    return min(close, key=lambda s: percentile(s.latencies_s, 50))


def render_layouts(
    summaries: Sequence[LayoutSummary],
    bare: dict[str, tuple[float, float]],
    environment: dict[str, str],
    notes: Sequence[str],
) -> str:
    """The `--layouts` report: one row per layout, the best marked; `bare` is layout label ->
    (images/s, CPU ms per image) of bare onnxruntime."""
    out = ["# Serving layouts", ""]
    out += [f"- {key}: {value}" for key, value in environment.items()]
    best = best_layout(summaries)
    rows = []
    for s in summaries:
        rounds = " / ".join(f"{r.throughput:.2f}" for r in s.results)
        errors = sum(r.error_count for r in s.results)
        other = [r.other_cpu for r in s.results if not math.isnan(r.other_cpu)]
        rows.append(
            [
                str(s.layout.workers),
                str(s.layout.threads),
                str(s.layout.parallel_runs),
                "on" if s.layout.spinning else "off",
                str(s.layout.nice),
                f"{s.throughput:.2f}",
                rounds,
                _fmt(percentile(s.latencies_s, 50) * 1000),
                _fmt(percentile(s.latencies_s, 95) * 1000),
                _fmt(s.single_p50_ms),
                _fmt(s.cpu_ms(API_ROLE), 1),
                _fmt(s.cpu_ms(MODEL_ROLE), 1),
                _fmt(s.peak_rss_mb),
                str(errors),
                _share(statistics.median(other) if other else math.nan),
                "**best**" if s is best else "",
            ]
        )
    out += [
        "",
        "## Concurrency 8, 1 MP JPEG with fresh bytes → default PNG",
        "",
        *table(
            [
                "MODEL_WORKERS",
                "MODEL_THREADS",
                "MODEL_PARALLEL_RUNS",
                "spinning",
                "API nice",
                "req/s",
                "req/s per round",
                "p50 ms",
                "p95 ms",
                "p50 ms at c=1",
                "API CPU ms/req",
                "model CPU ms/image",
                "peak RSS MB",
                "errors",
                "other CPU",
                "",
            ],
            rows,
        ),
        "",
        "Every column but *p50 ms at c=1* is concurrency 8; that one is the short "
        "concurrency-1 level run before it, on the same server.",
        "",
    ]
    if bare:
        out += [
            "## Bare onnxruntime, one image at a time",
            "",
            *table(
                ["layout", "images/s", "CPU ms/image"],
                [[label, f"{rate:.2f}", _fmt(cpu, 1)] for label, (rate, cpu) in bare.items()],
            ),
            "",
        ]
    all_notes = [*_contention(r.other_cpu for s in summaries for r in s.results), *notes]
    if all_notes:
        out += ["## Notes", "", *[f"- {note}" for note in all_notes], ""]
    return "\n".join(out).rstrip() + "\n"
