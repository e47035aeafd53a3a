"""Turn a run's results into a Markdown summary with its SLO verdict and capacity answer.

    python loadtests/summarize.py RESULTS_DIR [--prefix locust] [--host URL] [--out FILE]

Reads <prefix>_stats.csv (required), <prefix>_failures.csv, <prefix>_stats_history.csv and
<prefix>_series.json (optional) from RESULTS_DIR, prints the summary (also written to --out) and
draws capacity.png there: offered against served rate, p50/p95/p99 and the shed ratio over time.

Times are milliseconds. Locust's percentiles come from its histogram (2 significant digits above
100 ms). Failures are grouped by the status at the start of each failure message: `HTTP 429
rate_limited`, `HTTP 503 overloaded`, …; `bad 200` is a 200 that broke the contract, `conn` a
connection error.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loadtests.slo import Capacity, Series, Slo, capacity, verdict

AGGREGATED = "Aggregated"
PERCENTILES = (50, 95, 99)
_HTTP = re.compile(r"HTTP (\d{3}) ([^'\"\s)]+)")
_CATCH = re.compile(r"^CatchResponseError\((['\"])(.*)\1\)$")


@dataclass(frozen=True)
class Row:
    method: str
    name: str
    requests: int
    failures: int
    rps: float
    p50: float | None
    p95: float | None
    p99: float | None
    max_ms: float | None


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:  # locust writes N/A when nothing was measured
        return None


def _records(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_stats(path: Path) -> list[Row]:
    numbers = ("50%", "95%", "99%", "Max Response Time")
    rows = []
    for r in _records(path):
        counts = (int(r["Request Count"]), int(r["Failure Count"]), float(r["Requests/s"]))
        rows.append(Row(r["Type"], r["Name"], *counts, *(_number(r[key]) for key in numbers)))
    return rows


def failure_kind(error: str) -> tuple[str, str]:
    """(kind, message) of one locust error string, e.g.
    `CatchResponseError('HTTP 429 rate_limited')` -> ("429 rate_limited", "HTTP 429 …")."""
    caught = _CATCH.match(error.strip())
    message = caught.group(2) if caught else error.strip()
    if http := _HTTP.search(message):
        status, code = http.groups()
        return (status if code == "-" else f"{status} {code}"), message
    if message.startswith("bad 200"):
        return "bad 200", message
    if message.startswith("connection error") or "Connection" in message:
        return "conn", message
    return "other", message


def read_failures(path: Path) -> list[tuple[str, str, str, int]]:
    """(request, kind, message, count) of every distinct failure."""
    return [
        (f"{r['Method']} {r['Name']}", *failure_kind(r["Error"]), int(r["Occurrences"]))
        for r in _records(path)
    ]


def _ms(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.0f}"


def _percent(part: float, whole: float) -> str:
    return "–" if not whole else f"{100 * part / whole:.1f}%"


def stats_table(rows: Sequence[Row], failures: Sequence[tuple[str, str, str, int]]) -> list[str]:
    """One row per request name and the total: requests, req/s over the whole run, latency
    percentiles, failures, and one column per failure kind."""
    kinds = sorted({kind for _, kind, _, _ in failures})
    by_name: dict[str, Counter[str]] = {AGGREGATED: Counter()}
    for name, kind, _, count in failures:
        by_name.setdefault(name, Counter())[kind] += count
        by_name[AGGREGATED][kind] += count
    header = ["request", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "failures"]
    lines = ["| " + " | ".join([*header, "fail %", *kinds]) + " |"]
    lines.append("|---" + "|---:" * (len(header) + len(kinds)) + "|")
    ordered = sorted((r for r in rows if r.name != AGGREGATED), key=lambda r: (r.name, r.method))
    for row in [*ordered, *(r for r in rows if r.name == AGGREGATED)]:
        label = "**total**" if row.name == AGGREGATED else f"{row.method} {row.name}"
        counts = by_name.get(AGGREGATED if row.name == AGGREGATED else label, Counter())
        cells = [label, str(row.requests), f"{row.rps:.2f}", *map(_ms, (row.p50, row.p95))]
        cells += [_ms(row.p99), _ms(row.max_ms), str(row.failures)]
        cells += [_percent(row.failures, row.requests), *(str(counts[kind]) for kind in kinds)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def capacity_table(found: Capacity) -> list[str]:
    lines = ["", "## Capacity", "", found.summary() + ".", ""]
    lines += ["| offered req/s | sent | served req/s | p50 ms | p95 ms | p99 ms | errors | shed "]
    lines[-1] += "| unanswered | SLO |"
    lines.append("|" + "---:|" * 9 + "---|")
    for w in found.windows:
        s, served = w.stats, w.stats.served / (w.end - w.start)
        cells = [
            f"{w.offered:g}",
            str(s.sent),
            f"{served:.2f}",
            *(_ms(s.ms(q)) for q in PERCENTILES),
        ]
        cells += [
            _percent(s.error, s.answered),
            _percent(s.shed, s.answered),
            str(s.sent - s.answered),
        ]
        cells.append("met" if not w.failed else "missed: " + "; ".join(map(str, w.failed)))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot(series: Series, path: Path) -> str:
    """Offered vs served req/s, p50/p95/p99 of the ok answers, and the shed ratio, per second;
    the Markdown that shows it."""
    try:
        import matplotlib
    except ImportError:  # a development tool: requirements-dev.txt
        return "(no capacity.png: matplotlib is not installed)"

    matplotlib.use("Agg")
    from matplotlib import pyplot

    seconds = range(math.ceil(series.stats().seconds))
    stats = [series.stats(max(0, t - 4), t + 1) for t in seconds]  # the last 5 s at each second
    figure, (rates, latency, shed) = pyplot.subplots(3, 1, sharex=True, figsize=(9, 8))
    rates.plot(seconds, [s.sent / s.seconds for s in stats], label="offered (by intended time)")
    rates.plot(seconds, [s.served / s.seconds for s in stats], label="served (ok answers arriving)")
    for q in PERCENTILES:
        latency.plot(seconds, [s.ms(q) for s in stats], label=f"p{q}")
    shed.plot(seconds, [s.ratio(s.shed) for s in stats], label="shed 503s")
    shed.plot(seconds, [s.ratio(s.error) for s in stats], label="errors")
    labels = ("requests / s", "latency ms (log)", "share of answers")
    for axes, label in zip((rates, latency, shed), labels, strict=True):
        axes.set_ylabel(label)
        axes.legend(loc="upper left")
        axes.grid(alpha=0.3)
    latency.set_yscale("log")
    shed.set_xlabel("seconds since the start (by intended send time)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    return f"![offered and served rate, latency, shed ratio over time]({path.name})"


def summarize(
    results: Path, prefix: str = "locust", host: str | None = None
) -> tuple[str, Capacity | None]:
    """The Markdown summary of a run, and its capacity answer (None for a closed loop)."""
    rows = read_stats(results / f"{prefix}_stats.csv")
    failures = read_failures(results / f"{prefix}_failures.csv")
    history = [
        r for r in _records(results / f"{prefix}_stats_history.csv") if r["Name"] == AGGREGATED
    ]
    facts = [f"target `{host}`"] if host else []
    if history:
        stamps = [int(r["Timestamp"]) for r in history]
        facts.append(f"started {datetime.fromtimestamp(min(stamps), UTC):%Y-%m-%d %H:%M:%SZ}")
        users = max(int(r["User Count"]) for r in history)
        facts.append(f"{max(stamps) - min(stamps)} s; peak {users} users")
    lines = ["# Load-test summary", "", "; ".join(facts), "", *stats_table(rows, failures)]
    series, found = Series.load(results / f"{prefix}_series.json"), None
    if series.buckets:
        slo = Slo(**series.meta.get("slo", {}))
        lines += ["", "## SLO", "", verdict(series, slo)[1]]
        if found := capacity(series, slo, series.meta.get("pods", 1), series.meta.get("target")):
            lines += capacity_table(found)
        lines += ["", plot(series, results / "capacity.png")]
    if total := sum(series.cache.values()):
        hits, masks = series.cache.get("hit", 0), series.cache.get("mask", 0)
        counts = ", ".join(
            f"{name} {series.cache.get(name, 0)}" for name in ("hit", "mask", "miss")
        )
        lines += ["", "## Result cache", "", f"{total} single-result responses: {counts}. Hit "]
        lines[-1] += f"ratio {_percent(hits, total)} (finished result reused); model skipped for "
        lines[-1] += f"{_percent(hits + masks, total)} (hit or mask)."
    lines += ["", "## Failures", ""]
    if not failures:
        lines.append("none")
    else:
        lines += ["| request | kind | message | count |", "|---|---|---|---:|"]
        for name, kind, message, count in sorted(failures, key=lambda f: (-f[3], f[0])):
            lines.append(f"| {name} | {kind} | {message.replace('|', '/')} | {count} |")
    return "\n".join(lines) + "\n", found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="the folder holding locust's CSV files")
    parser.add_argument("--prefix", default="locust", help="the --csv prefix's file name part")
    parser.add_argument("--host", help="the target, shown in the summary")
    parser.add_argument("--out", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    text, _ = summarize(args.results, args.prefix, args.host)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
