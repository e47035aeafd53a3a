"""The `/health` checks and how they add up to healthy, degraded or unhealthy."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from operations.resources import container_memory_limit, container_memory_working_set

# A failing check in this set makes the service unhealthy; any other makes it degraded.
CRITICAL_CHECKS = frozenset({"app", "model", "disk_space"})
MIB = 1024 * 1024


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    critical: bool = False  # overrides: e.g. Redis down with fail-closed limits


def overall(checks: Mapping[str, Check]) -> str:
    """healthy, degraded (a non-critical check fails) or unhealthy (a critical one fails)."""
    failing = [name for name, check in checks.items() if not check.ok]
    if any(name in CRITICAL_CHECKS or checks[name].critical for name in failing):
        return "unhealthy"
    return "degraded" if failing else "healthy"


def report(checks: Mapping[str, Check]) -> dict[str, object]:
    return {
        "status": overall(checks),
        "checks": {
            name: {key: value for key, value in asdict(check).items() if key != "critical"}
            for name, check in checks.items()
        },
    }


def disk_space(folders: Iterable[Path], min_free_mb: int) -> Check:
    lowest = min((shutil.disk_usage(folder).free // MIB, folder) for folder in folders)
    free_mb, folder = lowest
    detail = f"{free_mb} MiB free in {folder} (minimum {min_free_mb} MiB)"
    return Check(free_mb >= min_free_mb, detail)


def memory(max_percent: float, limit: int | None = None, working_set: int | None = None) -> Check:
    """The container's working set against its memory limit (what an OOM kill compares), or
    the machine's memory where the container has no limit."""
    if limit is None:
        limit = container_memory_limit()
    if working_set is None and limit is not None:
        working_set = container_memory_working_set()
    if limit is None or working_set is None:
        used = psutil.virtual_memory().percent
        return Check(
            used < max_percent, f"{used:.0f}% of the machine used (limit {max_percent:.0f}%)"
        )
    used = 100 * working_set / limit
    detail = (
        f"{used:.0f}% of the container's {limit // MIB} MiB used ({working_set // MIB} MiB; "
        f"limit {max_percent:.0f}%)"
    )
    return Check(used < max_percent, detail)
