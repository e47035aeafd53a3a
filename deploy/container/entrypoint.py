"""PID 1 of the service's image: runs the Bento's own entrypoint and stops it in order.

`bentoml serve`'s arbiter stops the API service and the model service at the same moment on
SIGTERM. A request still being decoded in the API service then finds the model service gone
and fails with 500, although the API service would have finished it. So SIGTERM (and SIGINT)
go to the API service's workers first: they finish every request in flight, model calls
included (bounded by `--timeout-graceful-shutdown`), and exit; then the arbiter gets SIGTERM
and stops the model service. A second signal goes straight to the arbiter. As PID 1 this also
reaps orphaned processes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

BENTO = Path(os.environ.get("BENTO_PATH", "/home/bentoml/bento"))
BENTO_ENTRYPOINT = BENTO / "env" / "docker" / "entrypoint.sh"
POLL_S = 0.1


def entry_service() -> str:
    match = re.search(r"^entry_service: *(\S+)", (BENTO / "bento.yaml").read_text(), re.M)
    return match.group(1) if match else ""


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def api_workers(arbiter: int, service: str) -> list[int]:
    """The arbiter's children serving the entry service (`--service-name <it>`)."""
    found = []
    for pid in children(arbiter):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--service-name" in args:
            name = args.index(b"--service-name") + 1
            if args[name : name + 1] == [service.encode()]:
                found.append(pid)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def main() -> int:
    arbiter = subprocess.Popen([str(BENTO_ENTRYPOINT), *sys.argv[1:]]).pid
    service = entry_service()
    draining: list[int] = []
    signals: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _: signals.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _: signals.append(signum))
    arbiter_told = False
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
        if pid == arbiter:
            return os.waitstatus_to_exitcode(status)
        if pid:
            continue  # an orphan reaped; look for more at once
        if signals:
            signals.clear()
            if draining or not (workers := api_workers(arbiter, service)):
                os.kill(arbiter, signal.SIGTERM)
                arbiter_told = True
            else:
                draining = workers
                for worker in workers:
                    os.kill(worker, signal.SIGTERM)
        if draining and not arbiter_told and not any(alive(w) for w in draining):
            os.kill(arbiter, signal.SIGTERM)
            arbiter_told = True
        time.sleep(POLL_S)


if __name__ == "__main__":
    sys.exit(main())
