"""Turn a run's results into a Markdown summary with its SLO verdict and capacity answer (and
the Markdown helpers bench/report.py shares).

    python -m loadtests.summarize RESULTS_DIR [--prefix locust] [--host URL] [--out FILE]

Reads <prefix>_stats.csv (required), <prefix>_failures.csv, <prefix>_stats_history.csv and
<prefix>_series.json (optional) from RESULTS_DIR, prints the summary (also written to --out) and
draws capacity.png there. Times are milliseconds; failures are grouped by kind: the status and
code of `HTTP 503 overloaded`, `bad 200` (a 200 that broke the contract), `conn` (no answer).
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loadtests.slo import Capacity, Series, Slo, capacity, verdict

AGGREGATED = "Aggregated"
PERCENTILES = (50, 95, 99)
_HTTP = re.compile(r"HTTP (\d{3}) ([^'\"\s)]+)")
_CATCH = re.compile(r"^CatchResponseError\((['\"])(.*)\1\)$")


def fmt(value: float | None, digits: int = 0) -> str:
    """`value` with thousands separators, or – when nothing was measured (None or NaN)."""
    if value is None or math.isnan(value):
        return "–"
    text = f"{value:,.{digits}f}"
    return text.lstrip("-") if float(text.replace(",", "")) == 0 else text  # never "-0.0"


def percent(part: float, whole: float, digits: int = 1) -> str:
    return fmt(100 * part / whole, digits) + "%" if whole else "–"


def table(title: str, header: str, rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """A Markdown table (`header`: its cells joined by " | ") under `## title` (if any), its
    first `left` columns left-aligned and the others right-aligned; nothing without rows."""
    if not rows:
        return []
    rule = "|" + "---|" * left + "---:|" * (header.count(" | ") + 1 - left)
    lines = [f"## {title}", ""] if title else []
    return [*lines, f"| {header} |", rule, *("| " + " | ".join(row) + " |" for row in rows), ""]


@dataclass(frozen=True)
class Row:
    """One row of locust's stats CSV; None where locust measured nothing."""

    method: str
    name: str
    requests: int
    failures: int
    rps: float
    p50: float | None
    p95: float | None
    p99: float | None
    max_ms: float | None


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
        ms = (None if r[key] == "N/A" else float(r[key]) for key in numbers)
        rows.append(Row(r["Type"], r["Name"], *counts, *ms))
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


def stats_table(rows: Sequence[Row]) -> list[str]:
    """One row per request name and the total: requests, req/s over the whole run, latency
    percentiles and failures (by kind in the failures table)."""
    ordered = sorted((r for r in rows if r.name != AGGREGATED), key=lambda r: (r.name, r.method))
    body = []
    for row in [*ordered, *(r for r in rows if r.name == AGGREGATED)]:
        label = "**total**" if row.name == AGGREGATED else f"{row.method} {row.name}"
        cells = [label, str(row.requests), f"{row.rps:.2f}"]
        cells += [fmt(ms) for ms in (row.p50, row.p95, row.p99, row.max_ms)]
        body.append([*cells, str(row.failures), percent(row.failures, row.requests)])
    header = "request | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | failures | fail %"
    return table("", header, body)


def capacity_table(found: Capacity) -> list[str]:
    rows = []
    for w in found.windows:
        s = w.stats
        cells = [f"{w.offered:g}", str(s.sent), f"{s.served / (w.end - w.start):.2f}"]
        cells += [fmt(s.ms(q)) for q in PERCENTILES]
        cells += [percent(s.error, s.answered), percent(s.shed, s.answered)]
        slo = "met" if not w.failed else "missed: " + "; ".join(map(str, w.failed))
        rows.append([*cells, str(s.sent - s.answered), slo])
    header = "offered req/s | sent | served req/s | p50 ms | p95 ms | p99 ms | errors | shed"
    header += " | unanswered | SLO"
    return ["## Capacity", "", found.summary() + ".", "", *table("", header, rows)]


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
    failures = read_failures(results / f"{prefix}_failures.csv")
    history = _records(results / f"{prefix}_stats_history.csv")
    history = [r for r in history if r["Name"] == AGGREGATED]
    facts = [f"target `{host}`"] if host else []
    if history:
        stamps = [int(r["Timestamp"]) for r in history]
        facts.append(f"started {datetime.fromtimestamp(min(stamps), UTC):%Y-%m-%d %H:%M:%SZ}")
        users = max(int(r["User Count"]) for r in history)
        facts.append(f"{max(stamps) - min(stamps)} s; peak {users} users")
    lines = ["# Load-test summary", "", "; ".join(facts), ""]
    lines += stats_table(read_stats(results / f"{prefix}_stats.csv"))
    series, found = Series.load(results / f"{prefix}_series.json"), None
    if series.counts:
        slo = Slo(**series.meta.get("slo", {}))
        lines += ["## SLO", "", verdict(series, slo)[1], ""]
        if found := capacity(series, slo, series.meta.get("pods", 1), series.meta.get("target")):
            lines += capacity_table(found)
        lines += [plot(series, results / "capacity.png"), ""]
    if total := sum(series.cache.values()):
        hits, reused = series.cache["hit"], series.cache["hit"] + series.cache["mask"]
        counts = ", ".join(f"{name} {series.cache[name]}" for name in ("hit", "mask", "miss"))
        ratios = f"Hit ratio {percent(hits, total)} (finished result reused); model skipped for "
        ratios += f"{percent(reused, total)} (hit or mask)."
        lines += ["## Result cache", "", f"{total} single-result responses: {counts}. {ratios}", ""]
    rows = [
        [name, kind, message.replace("|", "/"), str(count)]
        for name, kind, message, count in sorted(failures, key=lambda f: (-f[3], f[0]))
    ]
    none = ["## Failures", "", "none"]
    lines += table("Failures", "request | kind | message | count", rows, 3) or none
    return "\n".join(lines).rstrip() + "\n", found


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
