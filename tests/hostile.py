"""Hostile inputs generated in code: small files that cost a decoder far more than their size,
header floods, JSON floods. Each is valid enough that a decoder or parser accepts it.

Used by the tests and by `bench/hostile.py`; nothing binary is committed.
"""

from __future__ import annotations

import struct
import zlib
from functools import cache

import httpx
from PIL import Image

from tests.images import encode

# Just under the default MAX_CONTENT_LENGTH (16 MiB), leaving room for multipart framing.
FLOOD_BYTES = 16 * 1024 * 1024 - 64 * 1024
SOS = b"\xff\xda"
EOI = b"\xff\xd9"


@cache
def scan_bomb_jpeg(side: int = 2000, repeats: int = 7500) -> bytes:
    """A progressive grey JPEG whose last scan is repeated: about 16 bytes per repeat, and
    each repeat costs the decoder a pass over every block (about 2 ms at 2000x2000).
    libjpeg only warns about the repeated scans and decodes the picture."""
    data = encode(Image.new("L", (side, side), 128), "JPEG", progressive=True, quality=90)
    last_scan = data[data.rfind(SOS) : -len(EOI)]
    return data[: -len(EOI)] + last_scan * repeats + EOI


def progressive_jpeg_with_scans(scans: int, side: int = 64) -> bytes:
    """A progressive grey JPEG with exactly `scans` scans (libjpeg writes 6 for grey)."""
    data = encode(Image.new("L", (side, side), 128), "JPEG", progressive=True, quality=90)
    written = data.count(SOS)
    last_scan = data[data.rfind(SOS) : -len(EOI)]
    return data[: -len(EOI)] + last_scan * (scans - written) + EOI


@cache
def _small_jpeg() -> bytes:
    return encode(Image.new("RGB", (64, 64), "red"), "JPEG")


@cache
def jpeg_segment_flood(total: int = FLOOD_BYTES) -> bytes:
    """A 64x64 JPEG behind millions of empty APP1 segments (4 bytes each): Pillow keeps a
    Python tuple for every one of them."""
    base = _small_jpeg()
    count = (total - len(base)) // 4
    return base[:2] + b"\xff\xe1\x00\x02" * count + base[2:]


@cache
def jpeg_junk_flood(total: int = FLOOD_BYTES) -> bytes:
    """A 64x64 JPEG with stray bytes between two segments, which Pillow skips one at a time."""
    base = _small_jpeg()
    at = base.find(b"\xff\xdb")
    return base[:at] + b"\x00" * (total - len(base)) + base[at:]


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


PNG_SIGNATURE_AND_IHDR = 8 + 25


@cache
def png_chunk_flood(total: int = FLOOD_BYTES) -> bytes:
    """A 64x64 PNG with a million empty private chunks (12 bytes each) before its pixels."""
    base = encode(Image.new("RGB", (64, 64), "red"), "PNG")
    count = (total - len(base)) // 12
    head, tail = base[:PNG_SIGNATURE_AND_IHDR], base[PNG_SIGNATURE_AND_IHDR:]
    return head + png_chunk(b"prVt", b"") * count + tail


@cache
def png_idat_flood(total: int = FLOOD_BYTES) -> bytes:
    """A 64x64 PNG whose pixels come after a million empty IDAT chunks (valid: the zlib
    stream simply continues in the next chunk)."""
    base = encode(Image.new("RGB", (64, 64), "red"), "PNG")
    count = (total - len(base)) // 12
    head, tail = base[:PNG_SIGNATURE_AND_IHDR], base[PNG_SIGNATURE_AND_IHDR:]
    return head + png_chunk(b"IDAT", b"") * count + tail


@cache
def gif_comment_flood(total: int = FLOOD_BYTES) -> bytes:
    """A 64x64 GIF with one comment extension of millions of one-byte sub-blocks: Pillow
    keeps a bytes object for every sub-block."""
    base = encode(Image.new("P", (64, 64), 1), "GIF")
    palette = 3 << ((base[10] & 7) + 1) if base[10] & 0x80 else 0
    head = 13 + palette
    count = (total - len(base)) // 2
    comment = b"\x21\xfe" + b"\x01a" * count + b"\x00"
    return base[:head] + comment + base[head:]


HEADER_FLOODS = {
    "jpeg_segments": jpeg_segment_flood,
    "jpeg_junk": jpeg_junk_flood,
    "png_chunks": png_chunk_flood,
    "png_idat": png_idat_flood,
    "gif_comments": gif_comment_flood,
}


@cache
def json_flood(total: int = FLOOD_BYTES) -> bytes:
    """A valid JSON array of millions of empty arrays: ~400 MB of Python objects parsed."""
    count = (total - 2) // 3
    return b"[" + b"[]," * (count - 1) + b"[]]"


@cache
def jpeg_with_unreadable_exif() -> bytes:
    """A photo with a JFIF density in dots per inch and an APP1 Exif block that is not TIFF
    data: the pixels decode, but Pillow's EXIF parser raises SyntaxError."""
    from tests.images import photo_image

    base = encode(photo_image("chelsea"), "JPEG", dpi=(300, 300))
    payload = b"Exif\x00\x00garbage!"
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    jfif_end = 4 + struct.unpack(">H", base[4:6])[0]
    return base[:jfif_end] + segment + base[jfif_end:]


def post(client: httpx.Client, kind: str, data: bytes) -> httpx.Response:
    """Send a hostile input where it does its harm: a JSON body (`kind` "json") to the JSON
    route, anything else as the image of /remove-background."""
    if kind == "json":
        return client.post(
            "/remove-background-base64", content=data, headers={"Content-Type": "application/json"}
        )
    return client.post("/remove-background", files={"file": ("x.jpg", data)})
