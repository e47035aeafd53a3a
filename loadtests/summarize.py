"""Turn locust's CSV output into a Markdown summary.

    python loadtests/summarize.py RESULTS_DIR [--prefix locust] [--host URL] [--out FILE]

Reads <prefix>_stats.csv (required), <prefix>_failures.csv and <prefix>_stats_history.csv
(optional) from RESULTS_DIR and prints the summary (also written to --out, if given).

Times are milliseconds. Locust's percentiles are from its response-time histogram (rounded
to 2 significant digits above 100 ms). Failures are grouped by the status that the
locustfile put at the start of each failure message: `HTTP 429 rate_limited`,
`HTTP 503 overloaded`, …; `bad 200` is a 200 that broke the contract (wrong content type,
broken zip…), `conn` a connection error.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

AGGREGATED = "Aggregated"
CACHE_FILE = "cache.json"  # written by the locustfile through LOADTEST_CACHE_FILE
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
    avg_bytes: float


@dataclass(frozen=True)
class Failure:
    method: str
    name: str
    kind: str  # "429 rate_limited", "503 overloaded", "bad 200", "conn", "other"
    message: str
    count: int


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:  # locust writes N/A when nothing was measured
        return None


def read_stats(path: Path) -> list[Row]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            Row(
                method=record["Type"],
                name=record["Name"],
                requests=int(record["Request Count"]),
                failures=int(record["Failure Count"]),
                rps=float(record["Requests/s"]),
                p50=_number(record["50%"]),
                p95=_number(record["95%"]),
                p99=_number(record["99%"]),
                max_ms=_number(record["Max Response Time"]),
                avg_bytes=_number(record["Average Content Size"]) or 0.0,
            )
            for record in csv.DictReader(handle)
        ]


def failure_kind(error: str) -> tuple[str, str]:
    """(kind, message) of one locust error string, e.g.
    `CatchResponseError('HTTP 429 rate_limited')` -> ("429 rate_limited", "HTTP 429 …")."""
    caught = _CATCH.match(error.strip())
    message = caught.group(2) if caught else error.strip()
    http = _HTTP.search(message)
    if http:
        status, code = http.groups()
        return (status if code == "-" else f"{status} {code}"), message
    if message.startswith("bad 200"):
        return "bad 200", message
    if message.startswith("connection error") or "Connection" in message:
        return "conn", message
    return "other", message


def read_failures(path: Path) -> list[Failure]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        failures = []
        for record in csv.DictReader(handle):
            kind, message = failure_kind(record["Error"])
            failures.append(
                Failure(record["Method"], record["Name"], kind, message, int(record["Occurrences"]))
            )
        return failures


def read_history(path: Path) -> dict[str, float]:
    """Run length (s), peak user count and start time from the full history, if present."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [record for record in csv.DictReader(handle) if record["Name"] == AGGREGATED]
    if not rows:
        return {}
    stamps = [int(record["Timestamp"]) for record in rows]
    return {
        "start": min(stamps),
        "seconds": max(stamps) - min(stamps),
        "peak_users": max(int(record["User Count"]) for record in rows),
    }


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _percent(part: int, whole: int) -> str:
    return "–" if whole == 0 else f"{100 * part / whole:.1f}%"


def read_cache_outcomes(path: Path) -> dict[str, int]:
    """The X-Cache counts the locustfile wrote (LOADTEST_CACHE_FILE); empty when absent."""
    if not path.exists():
        return {}
    counts = json.loads(path.read_text())
    return {str(name): int(count) for name, count in counts.items()}


def cache_lines(outcomes: dict[str, int]) -> list[str]:
    total = sum(outcomes.values())
    if total == 0:
        return []
    cells = ", ".join(f"{name} {outcomes.get(name, 0)}" for name in ("hit", "mask", "miss"))
    reused = outcomes.get("hit", 0) + outcomes.get("mask", 0)
    return [
        "",
        "## Result cache",
        "",
        f"{total} single-result responses: {cells}. Hit ratio "
        f"{_percent(outcomes.get('hit', 0), total)} (finished result reused); model skipped "
        f"for {_percent(reused, total)} (hit or mask).",
    ]


def render(
    rows: Sequence[Row],
    failures: Sequence[Failure],
    history: dict[str, float] | None = None,
    host: str | None = None,
    cache: dict[str, int] | None = None,
) -> str:
    history = history or {}
    lines = ["# Load-test summary", ""]
    facts = []
    if host:
        facts.append(f"target `{host}`")
    if "start" in history:
        started = datetime.fromtimestamp(history["start"], UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        facts.append(f"started {started}")
    if "seconds" in history:
        facts.append(f"{history['seconds']:.0f} s")
    if "peak_users" in history:
        facts.append(f"peak {history['peak_users']:.0f} users")
    if facts:
        lines += ["; ".join(facts), ""]

    requests = [row for row in rows if row.name != AGGREGATED]
    total = next((row for row in rows if row.name == AGGREGATED), None)
    kinds = sorted({failure.kind for failure in failures})
    by_name: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for failure in failures:
        by_name[(failure.method, failure.name)][failure.kind] += failure.count

    header = [
        "request",
        "requests",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "failures",
        "fail %",
        *kinds,
    ]
    lines += [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]

    def line(label: str, row: Row, counts: Counter[str]) -> str:
        cells = [
            label,
            str(row.requests),
            f"{row.rps:.2f}",
            _ms(row.p50),
            _ms(row.p95),
            _ms(row.p99),
            _ms(row.max_ms),
            str(row.failures),
            _percent(row.failures, row.requests),
            *(str(counts[kind]) for kind in kinds),
        ]
        return "| " + " | ".join(cells) + " |"

    for row in sorted(requests, key=lambda item: (item.name, item.method)):
        lines.append(line(f"{row.method} {row.name}", row, by_name[(row.method, row.name)]))
    if total is not None:
        totals: Counter[str] = Counter()
        for failure in failures:
            totals[failure.kind] += failure.count
        lines.append(line("**total**", total, totals))

    lines += cache_lines(cache or {})
    lines += ["", "## Failures", ""]
    if not failures:
        lines.append("none")
    else:
        lines += ["| request | kind | message | count |", "|---|---|---|---:|"]
        for failure in sorted(failures, key=lambda item: (-item.count, item.name)):
            lines.append(
                f"| {failure.method} {failure.name} | {failure.kind} | "
                f"{failure.message.replace('|', '/')} | {failure.count} |"
            )
    return "\n".join(lines) + "\n"


def summarize(results: Path, prefix: str = "locust", host: str | None = None) -> str:
    rows = read_stats(results / f"{prefix}_stats.csv")
    failures = read_failures(results / f"{prefix}_failures.csv")
    history = read_history(results / f"{prefix}_stats_history.csv")
    cache = read_cache_outcomes(results / CACHE_FILE)
    return render(rows, failures, history, host, cache)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="the folder holding locust's CSV files")
    parser.add_argument("--prefix", default="locust", help="the --csv prefix's file name part")
    parser.add_argument("--host", help="the target, shown in the summary")
    parser.add_argument("--out", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    text = summarize(args.results, args.prefix, args.host)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
