"""Request options, multipart bodies and response checks of the load test (pure functions).

Failure messages are short and stable (locust groups failures by message): they start with
`HTTP <status> <code>` when the server answered with an error, so summarize.py can group
them by status, and with `bad 200:` when a 200 answer broke the contract.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

from urllib3 import encode_multipart_formdata

from optimizer import PRESETS

# Output formats asked for explicitly; AVIF is the slowest encoder and the rarest ask.
FORMAT_WEIGHTS = {"PNG": 4, "JPEG": 3, "WEBP": 2, "AVIF": 1}
FORMAT_MIMETYPES = {fmt: f"image/{fmt.lower()}" for fmt in FORMAT_WEIGHTS}
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

# Where each output format's signature sits: (offset, bytes).
MAGIC = {
    "image/png": (0, b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": (0, b"\xff\xd8\xff"),
    "image/webp": (8, b"WEBP"),  # after RIFF and the size
    "image/avif": (4, b"ftypavi"),  # avif or avis
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


def expected_mimetype(options: Mapping[str, Any]) -> str:
    """The type the service must answer with: the explicit format > the preset's > PNG."""
    fmt = str(options.get("format") or PRESET_FORMATS.get(str(options.get("preset")), "PNG"))
    return FORMAT_MIMETYPES["JPEG" if fmt.upper() == "JPG" else fmt.upper()]


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
    """A multipart/form-data body and its Content-Type; `files` holds (field, filename,
    content type, data) tuples."""
    parts = [(field, (name, data, kind)) for field, name, kind, data in files]
    return encode_multipart_formdata([*fields.items(), *parts])


# --- response checks: (headers, body) -> None when fine, else a stable failure message -------


def error_kind(status: int, body: bytes) -> str:
    """`HTTP <status> <code>` for a non-2xx answer (`code` from the JSON error, or `-`)."""
    error = _json(body)
    code = (error.get("code") or error.get("status")) if isinstance(error, dict) else None
    return f"HTTP {status} {code or '-'}"


def _media_type(headers: Mapping[str, str]) -> str:
    return (headers.get("Content-Type") or "").split(";")[0].strip().lower()


def check_image(headers: Mapping[str, str], body: bytes, expected: str) -> str | None:
    """A 200 image answer: the expected Content-Type and matching magic bytes."""
    if (actual := _media_type(headers)) != expected:
        return f"bad 200: content-type {actual or 'missing'}, expected {expected}"
    offset, magic = MAGIC[expected]
    return None if body.startswith(magic, offset) else f"bad 200: body is not {expected}"


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def check_json_result(
    headers: Mapping[str, str], body: bytes, expected: str | None = None
) -> str | None:
    """A 200 JSON result (preview, base64, /read-file): success and an image of the expected
    mimetype (any image/* when None)."""
    result = _json(body)
    if not isinstance(result, dict) or result.get("success") is not True:
        return "bad 200: not JSON with success true"
    mimetype = str(result.get("mimetype"))
    if mimetype != expected if expected else not mimetype.startswith("image/"):
        return f"bad 200: mimetype {mimetype}, expected {expected or 'an image'}"
    return None if isinstance(result.get("image"), str) and result["image"] else "bad 200: no image"


def check_batch(headers: Mapping[str, str], body: bytes, count: int) -> str | None:
    """A 200 batch answer: a zip whose manifest lists `count` files, all `ok`."""
    if _media_type(headers) != "application/zip":
        return f"bad 200: content-type {_media_type(headers)}, expected application/zip"
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        return "bad 200: no readable manifest.json in the zip"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list) or len(files) != count:
        return f"bad 200: manifest lists {len(files or [])} files, expected {count}"
    if errors := [entry for entry in files if entry.get("status") != "ok"]:
        return f"bad 200: a batch file failed ({(errors[0].get('error') or {}).get('code', '-')})"
    return None


def check_presets(headers: Mapping[str, str], body: bytes) -> str | None:
    presets = _json(body)
    ok = isinstance(presets, dict) and set(PRESET_FORMATS) <= set(presets)
    return None if ok else "bad 200: presets missing"


def check_health(headers: Mapping[str, str], body: bytes) -> str | None:
    health = _json(body)
    status = health.get("status") if isinstance(health, dict) else None
    return None if status in ("healthy", "degraded") else f"bad 200: status {status}"
