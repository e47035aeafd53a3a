"""Bounded work per image: a walk over a file's container structure before any decoder sees it.

A small file can cost a decoder far more than its size says: a progressive JPEG whose scans
repeat (each scan is a pass over every block of the picture, so 7,500 repeats in 121 KB cost
15 s of CPU at 2000x2000), or millions of tiny header segments, chunks or comment sub-blocks
that Pillow parses one by one in Python and keeps as objects. The pixel cap sees none of it.

The walk counts what matters and refuses a file over any bound with `InvalidImage`:
- JPEG: scans (MAX_JPEG_SCANS; libjpeg's own scripts write at most 18 for images of up to
  four components), marker segments in the whole file (MAX_SEGMENTS), and bytes before the
  first scan, stray bytes included (MAX_HEADER_BYTES);
- PNG: chunks before the first IDAT (MAX_SEGMENTS), chunks in all (MAX_PNG_CHUNKS), bytes
  before the first IDAT;
- GIF: extension sub-blocks before the first image (MAX_SEGMENTS), bytes before it.
Scanning entropy-coded JPEG data for the next marker is a regular expression (C speed); the
Python loop runs once per segment or chunk, and stops at the first bound crossed. Other formats
are parsed by C libraries (libwebp, libavif) or have fixed headers (BMP). The choice of this
walk over a decoder scan limit or a CPU deadline is explained in docs/operations.md,
"Security".
"""

from __future__ import annotations

import re
import struct

from contract.errors import InvalidImage

MAX_JPEG_SCANS = 64
MAX_SEGMENTS = 4096
MAX_PNG_CHUNKS = 16384
MAX_HEADER_BYTES = 4 * 1024 * 1024

JPEG_SIGNATURE = b"\xff\xd8\xff"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
SOS, EOI = 0xDA, 0xD9
# Markers without a length: TEM, restart markers, SOI.
STANDALONE = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})
FILL = re.compile(rb"\xff+")
# A marker (or the start of a run of fill bytes) in entropy-coded data: 0xFF followed by
# anything but a stuffed zero or a restart marker. Starting with a literal byte keeps the
# search at C speed (about 10 ms for 16 MB).
NEXT_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xff]")
GIF_BLOCK = re.compile(rb"[\x21\x2c\x3b]")  # extension, image descriptor, trailer
GIF_EXTENSION = 0x21


def check_structure(data: bytes) -> None:
    """Refuse a JPEG, PNG or GIF whose structure is over the bounds; anything else passes
    (the decoder judges whether it is valid)."""
    if data.startswith(JPEG_SIGNATURE):
        _check_jpeg(data)
    elif data.startswith(PNG_SIGNATURE):
        _check_png(data)
    elif data.startswith(GIF_SIGNATURES):
        _check_gif(data)


def _refuse(what: str, limit: int) -> InvalidImage:
    return InvalidImage(
        f"The file has more {what} than this server reads (at most {limit}); "
        "no encoder writes that many"
    )


def _check_header_bytes(position: int) -> None:
    if position > MAX_HEADER_BYTES:
        raise InvalidImage(
            f"The file has more than {MAX_HEADER_BYTES} bytes before its first image data"
        )


def _check_jpeg(data: bytes) -> None:
    """Pillow parses up to the first scan in Python (stray bytes one at a time), libjpeg the
    rest; both are walked here the way they read it."""
    position = _jpeg_header_end(data)
    scans = segments = 0
    while position is not None and (found := NEXT_MARKER.search(data, position)):
        at = FILL.match(data, found.start()).end()  # type: ignore[union-attr]
        if at >= len(data):
            return
        marker = data[at]
        if marker == 0 or 0xD0 <= marker <= 0xD7:  # fill bytes before stuffing or a restart
            position = at + 1
            continue
        if marker == EOI:
            return
        segments += 1
        if segments > MAX_SEGMENTS:
            raise _refuse("JPEG marker segments", MAX_SEGMENTS)
        if marker == SOS:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise _refuse("JPEG scans", MAX_JPEG_SCANS)
        position = at + 1 + (0 if marker in STANDALONE else _length(data, at + 1))


def _jpeg_header_end(data: bytes) -> int | None:
    """Where the first scan's marker starts (None: there is none), after checking the
    segments and bytes before it."""
    position, segments = 2, 0
    while position < len(data) - 1:
        _check_header_bytes(position)
        if data[position] != 0xFF:  # stray bytes: Pillow skips them one by one
            position = data.find(b"\xff", position)
            if position < 0:
                return None
            continue
        run_end = FILL.match(data, position).end()  # type: ignore[union-attr]
        if run_end >= len(data):
            return None
        marker, position = data[run_end], run_end - 1
        if marker == SOS:
            return position
        segments += 1
        if segments > MAX_SEGMENTS:
            raise _refuse("JPEG header segments", MAX_SEGMENTS)
        if marker == EOI:
            return None
        position += 2 if marker in STANDALONE or marker == 0 else 2 + _length(data, position + 2)
    return None


def _length(data: bytes, at: int) -> int:
    """A segment's length field (which counts itself); at least 2, as the decoders read it."""
    if at + 2 > len(data):
        return 2
    return max(2, struct.unpack_from(">H", data, at)[0])


def _check_png(data: bytes) -> None:
    position, chunks, seen_pixels = len(PNG_SIGNATURE), 0, False
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        chunks += 1
        if kind == b"IDAT":
            seen_pixels = True
        elif not seen_pixels:
            _check_header_bytes(position)
            if chunks > MAX_SEGMENTS:
                raise _refuse("PNG chunks before the image data", MAX_SEGMENTS)
        if chunks > MAX_PNG_CHUNKS:
            raise _refuse("PNG chunks", MAX_PNG_CHUNKS)
        if kind == b"IEND":
            return
        position += 12 + length


def _check_gif(data: bytes) -> None:
    flags = data[10] if len(data) > 10 else 0
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    sub_blocks = 0
    while found := GIF_BLOCK.search(data, position):
        position = found.start()
        _check_header_bytes(position)
        if data[position] != GIF_EXTENSION:
            return  # the first image (or the trailer): its data is decoded in C
        position += 2  # introducer and label
        while position < len(data):
            size = data[position]
            position += 1 + size
            sub_blocks += 1
            if sub_blocks > MAX_SEGMENTS:
                raise _refuse("GIF extension blocks before the first image", MAX_SEGMENTS)
            if size == 0:
                break
