"""Deleting uploaded and produced files once they are older than FILE_TTL_HOURS."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("bg_remover.retention")


def remove_expired(folders: Iterable[Path], ttl_seconds: float, now: float | None = None) -> int:
    """Delete regular files older than the TTL (by mtime); never follow symlinks out."""
    cutoff = (time.time() if now is None else now) - ttl_seconds
    removed = 0
    for folder in folders:
        for path in folder.rglob("*"):
            try:
                if path.is_symlink() or not path.is_file():
                    continue
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # removed by someone else meanwhile
            except OSError as exc:  # one file we may not delete must not stop the sweep
                log.warning("cannot remove expired file %s: %s", path, exc.strerror or exc)
    return removed


def start_retention(
    folders: list[Path], ttl_seconds: float, every_seconds: float
) -> threading.Event:
    """Sweep in a daemon thread until the returned event is set."""
    stop = threading.Event()

    def sweep() -> None:
        while not stop.wait(every_seconds):
            try:
                if removed := remove_expired(folders, ttl_seconds):
                    log.info("removed %d expired files", removed)
            except OSError:
                log.exception("file retention sweep failed")

    threading.Thread(target=sweep, name="file-retention", daemon=True).start()
    return stop
