"""Request pieces the contract fixes: base64 images, form options, batch archives."""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contract.errors import InvalidImage, ServiceError

DATA_URL_PREFIX = re.compile(r"^data:[\w/+.-]*(;[\w=-]+)*;base64,", re.IGNORECASE)
WHITESPACE = re.compile(rb"\s+")


def decode_base64_image(value: Any) -> bytes:
    """A base64 string or `data:` URL to bytes; anything else is an invalid image."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidImage("'image' must be a non-empty base64 string or data URL")
    payload = DATA_URL_PREFIX.sub("", value.strip(), count=1)
    try:
        data = base64.b64decode(WHITESPACE.sub(b"", payload.encode("ascii")), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidImage("'image' is not valid base64") from None
    if not data:
        raise InvalidImage("'image' decodes to an empty file")
    return data


@dataclass
class BatchEntry:
    """One input of a batch: its output, or the error that stopped it."""

    name: str
    output_name: str
    original_size: int
    data: bytes | None = None
    mimetype: str | None = None
    error: ServiceError | None = None

    def manifest_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "output": self.output_name if self.error is None else None,
            "status": "ok" if self.error is None else "error",
            "original_size": self.original_size,
            "size": len(self.data) if self.data is not None else None,
            "mimetype": self.mimetype,
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
