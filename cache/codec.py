"""Framing cached values: a header, JSON metadata, the payload and a checksum over all of it.
A value that does not check out (truncated, corrupted, another format) decodes to None.

The checksum guards against damage (a truncated write, a value from another program), not
against an attacker who can write to Redis: CRC-32, a fraction of a cryptographic hash's time
(docs/performance.md, "Smaller choices")."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

MAGIC = b"BGRC"
VERSION = 2  # 1 carried a BLAKE2 digest
HEADER = struct.Struct(">4sBI")  # magic, version, metadata length
DIGEST = struct.Struct(">I")
DIGEST_BYTES = DIGEST.size


def encode(metadata: dict[str, Any], payload: bytes) -> bytes:
    meta = json.dumps(metadata, separators=(",", ":")).encode()
    body = HEADER.pack(MAGIC, VERSION, len(meta)) + meta + payload
    return body + _digest(body)


def decode(value: bytes | None) -> tuple[dict[str, Any], bytes] | None:
    if value is None or len(value) < HEADER.size + DIGEST_BYTES:
        return None
    body, digest = value[:-DIGEST_BYTES], value[-DIGEST_BYTES:]
    if _digest(body) != digest:
        return None
    magic, version, meta_length = HEADER.unpack_from(body)
    if magic != MAGIC or version != VERSION or HEADER.size + meta_length > len(body):
        return None
    try:
        metadata = json.loads(body[HEADER.size : HEADER.size + meta_length])
    except ValueError:
        return None
    if not isinstance(metadata, dict):
        return None
    return metadata, body[HEADER.size + meta_length :]


def _digest(body: bytes) -> bytes:
    return DIGEST.pack(zlib.crc32(body))
