"""`/read-file`: reading a file under UPLOAD_DIR, and nothing outside it.

The requested path is resolved (following every symlink) and only then checked for
containment with `Path.is_relative_to`; a string prefix test would let `uploads-old/` through.
"""

from __future__ import annotations

import re
from pathlib import Path

from contract.errors import Forbidden, InvalidParameter, NotFound, PayloadTooLarge

MAX_PATH_LENGTH = 1024
# Percent-encoded dots and separators, and Windows separators: never part of a honest path here.
SMUGGLED_SEPARATOR = re.compile(r"%(2e|2f|5c)|\\", re.IGNORECASE)


def resolve_upload_path(upload_dir: Path, requested: object) -> Path:
    if not isinstance(requested, str) or not requested.strip():
        raise InvalidParameter("'path' must be a non-empty string")
    if "\x00" in requested:
        raise InvalidParameter("'path' must not contain NUL bytes")
    if len(requested) > MAX_PATH_LENGTH:
        raise InvalidParameter(f"'path' is longer than {MAX_PATH_LENGTH} characters")
    if SMUGGLED_SEPARATOR.search(requested):
        raise Forbidden("Encoded or backslash separators are not allowed in 'path'")
    base = upload_dir.resolve()
    target = (base / requested).resolve()  # an absolute `requested` replaces `base` here
    if not target.is_relative_to(base):
        raise Forbidden("The path resolves outside the upload directory")
    if not target.exists():
        raise NotFound(f"No file '{requested}' in the upload directory")
    if not target.is_file():
        raise InvalidParameter(f"'{requested}' is not a regular file")
    return target


def read_upload(path: Path, max_bytes: int) -> bytes:
    """The file's bytes; a file removed meanwhile (the retention sweep) is simply not found."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"No file '{path.name}' in the upload directory") from None
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"The file is larger than {max_bytes} bytes")
    return data
