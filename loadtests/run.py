"""Run the load test headless against HOST, then summarise it (see loadtests/README.md).

    loadtests/run.sh HOST [locust arguments: user class names, --rate, --slo-*, --processes N…]

Checks that HOST/health answers; writes the /read-file samples into $UPLOAD_DIR when that is set
(a server on the same host); runs locust into loadtests/results/<UTC timestamp>/ (or
$RESULTS_DIR), then writes summary.md there. The exit status is the SLO verdict (0 met, 1
missed). The target's rate limits must be off or raised, or the run given a load-test key
(LOADTEST_API_KEY). The load-test flags: loadtests/README.md (ARGUMENTS in the locustfile).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from loadtests.inputs import write_uploads
from loadtests.summarize import main as summarize

ROOT = Path(__file__).resolve().parents[1]


def locust(
    host: str,
    out: Path,
    env: dict[str, str] | None = None,
    extra: Sequence[str] = (),
    timeout: float | None = None,
    quiet: bool = True,
) -> int:
    """One headless run of the locustfile into `out` (its output in locust.out when `quiet`)."""
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py")]
    command += ["--headless", "--host", host, "--csv", str(out / "locust"), "--csv-full-history"]
    command += ["--html", str(out / "report.html"), "--logfile", str(out / "locust.log"), *extra]
    with (out / "locust.out").open("wb") as sink:
        stdout, stderr = (sink, subprocess.STDOUT) if quiet else (None, None)
        env = {**os.environ, **(env or {})}
        run = subprocess.run(
            command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr, timeout=timeout
        )
    return run.returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("host", help="the service, e.g. http://127.0.0.1:3000")
    args, extra = parser.parse_known_args(argv)
    host = args.host.rstrip("/")
    try:
        health = httpx.get(f"{host}/health", timeout=10)
        print(f"target {host}: /health {health.status_code} {health.text[:200]}")
    except httpx.HTTPError as exc:
        sys.exit(f"target {host} is not reachable: {exc}")
    if upload_dir := os.environ.get("UPLOAD_DIR"):
        write_uploads(Path(upload_dir))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = Path(os.environ.get("RESULTS_DIR") or ROOT / "loadtests" / "results" / stamp)
    print(f"results: {out}", flush=True)
    status = locust(host, out, extra=extra, quiet=False)
    if (out / "locust_stats.csv").exists():
        summarize([str(out), "--host", host, "--out", str(out / "summary.md")])
        print(f"summary: {out / 'summary.md'}")
    else:
        print(f"locust wrote no stats (exit {status}); see {out / 'locust.log'}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
