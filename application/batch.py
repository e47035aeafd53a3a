"""The batch route's pieces: one entry per input, unique output names, the zip."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contract.errors import ServiceError


@dataclass
class BatchEntry:
    """One input of a batch: its output, or the error that stopped it."""

    name: str
    output_name: str
    input_bytes: int
    data: bytes | None = None
    mimetype: str | None = None
    error: ServiceError | None = None
    etag: str | None = None
    cache: str | None = None  # hit, mask or miss

    def manifest_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "output": self.output_name if self.error is None else None,
            "status": "ok" if self.error is None else "error",
            "original_size": self.input_bytes,
            "size": len(self.data) if self.data is not None else None,
            "mimetype": self.mimetype,
            "etag": self.etag,
            "cache": self.cache,
            "error": self.error.body() if self.error is not None else None,
        }


def batch_archive(entries: Iterable[BatchEntry]) -> bytes:
    """A zip of every successful output plus `manifest.json` describing each input."""
    entries = list(entries)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for entry in entries:
            if entry.data is not None:
                # Images are compressed already; deflating them again costs time for nothing.
                archive.writestr(entry.output_name, entry.data, zipfile.ZIP_STORED)
        manifest = {"files": [entry.manifest_row() for entry in entries]}
        archive.writestr("manifest.json", json.dumps(manifest, indent=2), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def unique_names(names: Iterable[str]) -> list[str]:
    """Names made unique by a `-2`, `-3`… before the extension, in order of appearance."""
    taken: set[str] = set()
    unique = []
    for name in names:
        stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
        candidate, count = name, 1
        while candidate in taken:
            count += 1
            candidate = f"{stem}-{count}{dot}{ext}"
        taken.add(candidate)
        unique.append(candidate)
    return unique
