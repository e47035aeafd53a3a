"""How a result is described to the client: download names, headers, the JSON result."""

from __future__ import annotations

import base64
import re
import unicodedata
from typing import Any
from urllib.parse import quote

from contract import headers
from optimizer import Options, Result

FALLBACK_STEM = "image"
MAX_STEM_LENGTH = 100
UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f"\\;/:*?<>|%]+')


def download_name(uploaded_name: str | None, options: Options) -> str:
    return f"{safe_stem(uploaded_name)}_no_bg.{options.format.extension}"


def safe_stem(uploaded_name: str | None) -> str:
    """The upload's stem without any path, control or quoting characters (nor anything that
    is not text: a lone surrogate)."""
    name = (uploaded_name or "").encode("utf-8", "replace").decode("utf-8")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name.strip(".") else name
    stem = UNSAFE_IN_NAME.sub("_", stem).strip(" ._")[:MAX_STEM_LENGTH]
    return stem or FALLBACK_STEM


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII `filename` always, plus `filename*` when the name is not ASCII."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = UNSAFE_IN_NAME.sub("_", ascii_name)
    if not ascii_name or ascii_name.startswith(("_", ".")):  # the whole stem was non-ASCII
        ascii_name = FALLBACK_STEM + ascii_name
    if ascii_name == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def result_headers(result: Result, options: Options, elapsed_ms: float) -> dict[str, str]:
    return {
        headers.ORIGINAL_SIZE: str(result.input_bytes),
        headers.OPTIMIZED_SIZE: str(result.output_bytes),
        headers.OPTIMIZATION_USED: "true" if options.explicit else "false",
        headers.IMAGE_WIDTH: str(result.width),
        headers.IMAGE_HEIGHT: str(result.height),
        headers.PROCESSING_TIME_MS: str(round(elapsed_ms)),
    }


def result_json(result: Result, options: Options) -> dict[str, Any]:
    return {
        "success": True,
        "image": base64.b64encode(result.data).decode("ascii"),
        "mimetype": result.format.mimetype,
        "size": result.output_bytes,
        "original_size": result.input_bytes,
        "width": result.width,
        "height": result.height,
        "optimization": optimization_summary(result, options),
    }


def optimization_summary(result: Result, options: Options) -> dict[str, Any]:
    return {
        "format": result.format.value,
        "quality": options.quality,
        "dimensions": f"{result.width}x{result.height}",
        "compression_ratio": result.compression_ratio,
        "preset": options.preset,
    }


# Stages as Server-Timing names them; model-input preparation counts as decoding.
TIMING_STAGES = {
    "decode": ("decode", "preprocess"),
    "inference": ("inference",),
    "compose": ("compose",),
    "encode": ("encode",),
}


def server_timing(timings_ms: dict[str, float], total_ms: float, cache: str | None) -> str:
    """`Server-Timing`: the stages that ran, the total, and the cache outcome."""
    parts = [
        f"{name};dur={sum(timings_ms[part] for part in parts if part in timings_ms):.1f}"
        for name, parts in TIMING_STAGES.items()
        if any(part in timings_ms for part in parts)
    ]
    parts.append(f"total;dur={total_ms:.1f}")
    if cache is not None:
        parts.append(f"cache;desc={cache}")
    return ", ".join(parts)


# Representations of one result, each with its own ETag.
IMAGE, REMOVEBG_JSON = "image", "removebg-json"


def json_representation(options: Options) -> str:
    """The JSON result also names the preset, so it is part of that representation."""
    return f"json:{options.preset}"


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*`, or any listed tag equal under the weak comparison."""
    return matched_tag(if_none_match, etag) is not None


def matched_tag(if_none_match: str, etag: str) -> str | None:
    """What in If-None-Match matches `etag`: the tag itself, `*`, or nothing (None)."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    if etag in tags:
        return etag
    return "*" if "*" in tags else None
