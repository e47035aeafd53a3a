"""Hostile-input benchmark: what a scan bomb, header floods and a JSON flood cost a real
`bentoml serve`, three of each sent at once.

For every case a fresh server of the project in `--project` (this checkout by default, so an
older checkout can be measured the same way) gets the three requests at once, and the script
prints, per case: the answers (status, slowest answer), the CPU seconds the server's process
tree spent until it was idle again, the tree's peak RSS over its idle size and what it kept
once idle, and the slowest `/health` answer while the case ran (polled every 0.1 s).

    .venv/bin/python bench/hostile.py                          # this checkout
    .venv/bin/python bench/hostile.py --project ../other-checkout --cases scan_bomb,json_flood
    .venv/bin/python bench/hostile.py --decoders               # no server: what decoding costs

`--decoders` measures in this process what each input costs Pillow when nothing stops it
(CPU seconds to open and decode), what the structure walk that refuses it costs
(`optimizer.structure`), and what one repeated progressive scan costs at several sizes.

The inputs come from tests/hostile.py (generated in code, nothing stored).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
from PIL import Image  # noqa: E402

from contract.errors import InvalidImage  # noqa: E402
from optimizer.structure import check_structure  # noqa: E402
from tests import hostile  # noqa: E402
from tests.e2e.server import BentoServer  # noqa: E402
from tests.serving import process_tree, tree_rss  # noqa: E402

MIB = 1024 * 1024
AT_ONCE = 3
IDLE_CPU_S = 0.02  # the tree is idle once it spends less than this per IDLE_WINDOW_S
IDLE_WINDOW_S = 1.0
MAX_WAIT_S = 600.0
CASES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "scan_bomb": ("file", hostile.scan_bomb_jpeg),
    **{f"{name}_flood": ("file", make) for name, make in hostile.HEADER_FLOODS.items()},
    "json_flood": ("json", hostile.json_flood),
}


@dataclass
class CaseResult:
    name: str
    statuses: list[int]
    slowest_answer_s: float
    cpu_s: float
    peak_over_idle_mib: float
    kept_mib: float
    slowest_health_s: float


class TreeSampler(threading.Thread):
    """The server's process tree: RSS every 50 ms, and /health latency every 100 ms."""

    def __init__(self, server: BentoServer) -> None:
        super().__init__(daemon=True)
        assert server.process is not None
        self.pid = server.process.pid
        self.url = server.url
        self.peak_rss = 0
        self.slowest_health = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            next_health = 0.0
            while not self.stop.is_set():
                self.peak_rss = max(self.peak_rss, tree_rss(self.pid))
                if time.monotonic() >= next_health:
                    started = time.monotonic()
                    with suppress(httpx.HTTPError):
                        client.get("/health")
                    self.slowest_health = max(self.slowest_health, time.monotonic() - started)
                    next_health = time.monotonic() + 0.1
                time.sleep(0.05)


def tree_cpu(pid: int) -> float:
    total = 0.0
    for process in process_tree(pid):
        with suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def wait_idle(pid: int, deadline: float) -> float:
    """Wait until the tree stops spending CPU; its CPU seconds at that moment."""
    previous = tree_cpu(pid)
    while time.monotonic() < deadline:
        time.sleep(IDLE_WINDOW_S)
        now = tree_cpu(pid)
        if now - previous < IDLE_CPU_S:
            return now
        previous = now
    return tree_cpu(pid)


def send(url: str, kind: str, data: bytes) -> tuple[int, float]:
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=MAX_WAIT_S) as client:
        try:
            status = hostile.post(client, kind, data).status_code
        except httpx.HTTPError:
            status = 0  # no answer: the connection ended
    return status, time.monotonic() - started


def run_case(name: str, project: Path, scratch: Path) -> CaseResult:
    kind, make = CASES[name]
    data = make()
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))
    with BentoServer(workdir, cwd=project) as server:
        assert server.process is not None
        pid = server.process.pid
        wait_idle(pid, time.monotonic() + 60)
        idle_rss, cpu_before = tree_rss(pid), tree_cpu(pid)
        sampler = TreeSampler(server)
        sampler.start()
        with ThreadPoolExecutor(AT_ONCE) as pool:
            answers = list(pool.map(lambda _: send(server.url, kind, data), range(AT_ONCE)))
        cpu_after = wait_idle(pid, time.monotonic() + MAX_WAIT_S)
        sampler.stop.set()
        sampler.join()
        kept = tree_rss(pid) - idle_rss
    return CaseResult(
        name,
        [status for status, _ in answers],
        max(seconds for _, seconds in answers),
        cpu_after - cpu_before,
        (sampler.peak_rss - idle_rss) / MIB,
        kept / MIB,
        sampler.slowest_health,
    )


def cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def report(results: list[CaseResult], project: Path) -> str:
    lines = [
        f"Hostile input, {AT_ONCE} requests at once per case, one fresh server each: "
        f"{project} on {cpu_model()}, {os.cpu_count()} CPUs",
        "",
        "| case | answers | slowest answer s | CPU s | peak RSS over idle MiB | kept MiB "
        "| slowest /health s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        statuses = ", ".join(str(status) for status in r.statuses)
        lines.append(
            f"| {r.name} | {statuses} | {r.slowest_answer_s:.1f} | {r.cpu_s:.1f} "
            f"| {r.peak_over_idle_mib:.0f} | {r.kept_mib:.0f} | {r.slowest_health_s:.2f} |"
        )
    return "\n".join(lines)


def decoder_costs(names: list[str]) -> str:
    """Pillow's CPU seconds per input without the walk, and the walk's milliseconds."""
    lines = [
        f"Decoding without bounds, in process, on {cpu_model()}",
        "",
        "| input | bytes | Pillow open + decode CPU s | structure walk ms | walk verdict |",
        "|---|---:|---:|---:|---|",
    ]
    for name in names:
        kind, make = CASES[name]
        if kind != "file":
            continue
        data = make()
        started = time.perf_counter()
        try:
            check_structure(data)
            verdict = "passes"
        except InvalidImage:
            verdict = "refused"
        walk_ms = (time.perf_counter() - started) * 1000
        pillow_s = _decode_cpu(data)
        lines.append(f"| {name} | {len(data)} | {pillow_s:.2f} | {walk_ms:.2f} | {verdict} |")
    lines += ["", "| side | one repeated scan, ms |", "|---:|---:|"]
    for side in (1000, 2000, 4000, 7000):
        plain = _decode_cpu(hostile.scan_bomb_jpeg(side, 0))
        repeated = _decode_cpu(hostile.scan_bomb_jpeg(side, 100))
        lines.append(f"| {side} | {(repeated - plain) * 10:.2f} |")
    return "\n".join(lines)


def _decode_cpu(data: bytes) -> float:
    started = time.process_time()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
    return time.process_time() - started


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=ROOT, help="the checkout to serve")
    parser.add_argument("--cases", default=",".join(CASES), help="comma list of cases")
    parser.add_argument(
        "--decoders", action="store_true", help="measure decoding costs in process, no server"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    names = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = sorted(set(names) - CASES.keys())
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    if args.decoders:
        print(decoder_costs(names))
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as scratch:
        for name in names:
            print(f"{name} ...", file=sys.stderr, flush=True)
            results.append(run_case(name, args.project.resolve(), Path(scratch)))
    print(report(results, args.project.resolve()))


if __name__ == "__main__":
    main()
