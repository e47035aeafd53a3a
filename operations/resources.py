"""What the container gives this process: its memory limit and use, from the cgroup files."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from pathlib import Path

from PIL import Image

CGROUP_MEMORY_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)
CGROUP_MEMORY_USAGE = (
    Path("/sys/fs/cgroup/memory.current"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # cgroup v1
)
# Page cache the kernel reclaims before it kills anything, in each version's memory.stat.
INACTIVE_FILE = {"memory.current": "inactive_file", "memory.usage_in_bytes": "total_inactive_file"}
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


def container_memory_working_set(files: tuple[Path, ...] = CGROUP_MEMORY_USAGE) -> int | None:
    """The container's memory in use less its inactive page cache, in bytes: what the kubelet
    calls the working set and compares with the limit. None where it cannot be read."""
    for path in files:
        try:
            usage = int(path.read_text())
            stat = (path.parent / "memory.stat").read_text()
        except (OSError, ValueError):
            continue
        counters = dict(line.split(maxsplit=1) for line in stat.splitlines() if " " in line)
        inactive = int(counters.get(INACTIVE_FILE[path.name], 0))
        return max(0, usage - inactive)
    return None


# glibc's mallopt parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 16 * 1024 * 1024
ARENA_MAX = 2
# Pillow holds a large image in blocks of whole lines up to this size. At its default, the
# block size itself, a block falls just under the threshold and comes from a heap; at twice
# it, every block of a large image is a mapping of its own, given back as soon as it is freed.
PILLOW_BLOCK_BYTES = 2 * MMAP_THRESHOLD_BYTES


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, looked up once: `find_library` runs `ldconfig` in a child process, a
    fork of this one, which must not happen again for every large image."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def trim_free_heap() -> bool:
    """Give the free pages of every glibc heap back to the system (`malloc_trim`): buffers
    under the mmap threshold that a finished image freed stay resident otherwise, and the
    next image's work, in another thread's heap, adds to them. False where there is no
    glibc."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


def return_freed_memory_promptly() -> bool:
    """Make glibc give large freed buffers back to the system at once.

    By default glibc raises its mmap threshold to the largest block freed so far (up to
    32 MiB), after which the buffers of large images come from the heap and stay resident once
    freed, and every worker thread gets a heap of its own: a burst of large images left the API
    worker far above the memory it had admitted. A fixed 16 MiB threshold and two heaps keep
    resident memory close to what is in use, and so do Pillow's blocks of a large image made
    larger than the threshold. (A 128 KiB threshold does too, but then every buffer of an
    ordinary 1 MP request is a fresh mapping, which costs CPU.) The figures:
    docs/operations.md, "Memory". Returns False where the C library is not glibc.
    """
    Image.core.set_block_size(PILLOW_BLOCK_BYTES)
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_ARENA_MAX, ARENA_MAX)
    )
