"""What the container gives this process: its memory limit, from the cgroup files."""

from __future__ import annotations

from pathlib import Path

CGROUP_MEMORY_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)
UNLIMITED_ABOVE = 1 << 60  # cgroup v1 writes "no limit" as a number near 2**63


def container_memory_limit(files: tuple[Path, ...] = CGROUP_MEMORY_LIMITS) -> int | None:
    """The memory limit in bytes, or None where there is none (or it cannot be read)."""
    for path in files:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max":
            return None
        try:
            limit = int(text)
        except ValueError:
            continue
        return None if limit >= UNLIMITED_ABOVE else limit
    return None
