"""Request options, multipart bodies and response checks of the load test (pure functions).

Failure messages are short and stable (locust groups failures by message): they start with
`HTTP <status> <code>` when the server answered with an error, so summarize.py can group
them by status, and with `bad 200:` when a 200 answer broke the contract.
"""

from __future__ import annotations

import io
import json
import random
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

from optimizer import PRESETS

FORMAT_MIMETYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
}
# Output formats asked for explicitly; AVIF is the slowest encoder and the rarest ask.
FORMAT_WEIGHTS = {"PNG": 4, "JPEG": 3, "WEBP": 2, "AVIF": 1}
# The service's preset table (the one in optimizer/options.py): preset -> output format.
PRESET_FORMATS = {name: preset.format.value for name, preset in PRESETS.items()}
QUALITIES = (60, 75, 85, 95)
BOXES = ((800, 600), (1200, 800), (1920, 1080), (300, 300))
BG_COLORS = ("#ffffff", "white", "#00000080", "#3a7", "rebeccapurple")
CROP_MARGINS = ("10", "5%")
BOOLEAN_OPTIONS = ("crop", "only_mask")
INTEGER_OPTIONS = ("quality", "max_width", "max_height")

# Probabilities that a request carries each option.
P_PRESET, P_FORMAT_WITH_PRESET, P_QUALITY, P_BOX = 0.2, 0.3, 0.4, 0.3
P_CROP, P_MARGIN, P_BG, P_MASK, P_LOWERCASE = 0.15, 0.5, 0.15, 0.05, 0.2

MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}


def random_options(rng: random.Random) -> dict[str, str]:
    """A realistic option set, as form-field strings (see docs/api.md, "Options")."""
    options: dict[str, str] = {}
    if rng.random() < P_PRESET:
        options["preset"] = rng.choice(list(PRESET_FORMATS))
    if "preset" not in options or rng.random() < P_FORMAT_WITH_PRESET:
        fmt = rng.choices(list(FORMAT_WEIGHTS), weights=list(FORMAT_WEIGHTS.values()))[0]
        options["format"] = fmt.lower() if rng.random() < P_LOWERCASE else fmt
    if rng.random() < P_QUALITY:
        options["quality"] = str(rng.choice(QUALITIES))
    if rng.random() < P_BOX:
        width, height = rng.choice(BOXES)
        which = rng.choice(("both", "width", "height"))
        if which != "height":
            options["max_width"] = str(width)
        if which != "width":
            options["max_height"] = str(height)
    if rng.random() < P_CROP:
        options["crop"] = "true"
        if rng.random() < P_MARGIN:
            options["crop_margin"] = rng.choice(CROP_MARGINS)
    if rng.random() < P_BG:
        options["bg_color"] = rng.choice(BG_COLORS)
    if rng.random() < P_MASK:
        options["only_mask"] = "true"
    return options


def expected_format(options: Mapping[str, Any]) -> str:
    """The output format the service must answer with: explicit > preset > PNG."""
    fmt = options.get("format")
    if fmt:
        fmt = str(fmt).upper()
        return "JPEG" if fmt == "JPG" else fmt
    return PRESET_FORMATS.get(str(options.get("preset")), "PNG")


def expected_mimetype(options: Mapping[str, Any]) -> str:
    return FORMAT_MIMETYPES[expected_format(options)]


def json_options(options: Mapping[str, str]) -> dict[str, Any]:
    """Form-field options as JSON values (integers and booleans typed) for /…-base64."""
    typed: dict[str, Any] = {}
    for key, value in options.items():
        if key in INTEGER_OPTIONS or (key == "crop_margin" and value.isdigit()):
            typed[key] = int(value)
        elif key in BOOLEAN_OPTIONS:
            typed[key] = value == "true"
        else:
            typed[key] = value
    return typed


def multipart(
    fields: Mapping[str, str], files: Sequence[tuple[str, str, str, bytes]]
) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type.

    `files` holds (field, filename, content type, data) tuples.
    """
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, value in fields.items():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for field, filename, content_type, data in files:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
        )
        chunks.append(data)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


# --- response checks: None when fine, else a stable failure message ------------------------


def error_kind(status: int, body: bytes) -> str:
    """`HTTP <status> <code>` for a non-2xx answer (`code` from the JSON error, or `-`)."""
    code = "-"
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        code = str(parsed.get("code") or parsed.get("status") or "-")
    return f"HTTP {status} {code}"


def _magic_ok(mimetype: str, data: bytes) -> bool:
    if mimetype == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if mimetype == "image/avif":
        return data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis")
    return data.startswith(MAGIC[mimetype])


def check_image(content_type: str | None, body: bytes, expected: str) -> str | None:
    """A 200 image answer: the expected Content-Type and matching magic bytes."""
    actual = (content_type or "").split(";")[0].strip().lower()
    if actual != expected:
        return f"bad 200: content-type {actual or 'missing'}, expected {expected}"
    if not _magic_ok(expected, body):
        return f"bad 200: body is not {expected}"
    return None


def check_json_result(body: bytes, expected: str) -> str | None:
    """A 200 JSON result (preview, base64): success, the expected mimetype, an image."""
    try:
        result = json.loads(body)
    except ValueError:
        return "bad 200: not JSON"
    if not isinstance(result, dict) or result.get("success") is not True:
        return "bad 200: success is not true"
    if result.get("mimetype") != expected:
        return f"bad 200: mimetype {result.get('mimetype')}, expected {expected}"
    if not isinstance(result.get("image"), str) or not result["image"]:
        return "bad 200: no image"
    return None


def check_batch(content_type: str | None, body: bytes, count: int) -> str | None:
    """A 200 batch answer: a zip whose manifest lists `count` files, all `ok`."""
    if (content_type or "").split(";")[0].strip().lower() != "application/zip":
        return f"bad 200: content-type {content_type}, expected application/zip"
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        return "bad 200: no readable manifest.json in the zip"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list) or len(files) != count:
        return f"bad 200: manifest lists {len(files or [])} files, expected {count}"
    errors = [entry for entry in files if entry.get("status") != "ok"]
    if errors:
        code = (errors[0].get("error") or {}).get("code", "-")
        return f"bad 200: a batch file failed ({code})"
    return None


def check_read_file(body: bytes) -> str | None:
    try:
        result = json.loads(body)
    except ValueError:
        return "bad 200: not JSON"
    if not isinstance(result, dict) or result.get("success") is not True:
        return "bad 200: success is not true"
    if not str(result.get("mimetype", "")).startswith("image/") or not result.get("image"):
        return "bad 200: no image"
    return None


def check_presets(body: bytes) -> str | None:
    try:
        presets = json.loads(body)
    except ValueError:
        return "bad 200: not JSON"
    if not isinstance(presets, dict) or not set(PRESET_FORMATS) <= set(presets):
        return "bad 200: presets missing"
    return None


def check_health(body: bytes) -> str | None:
    try:
        status = json.loads(body).get("status")
    except (ValueError, AttributeError):
        return "bad 200: not JSON"
    if status not in ("healthy", "degraded"):
        return f"bad 200: status {status}"
    return None
