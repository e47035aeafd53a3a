"""How a result is described to the client: a 304 when the client holds it already, its
headers (the result's, ETag, X-Cache, Server-Timing, Cache-Control), download names, and the
shapes single-result routes answer in (`Shape`: the image, or the JSON result)."""

from __future__ import annotations

import asyncio
import base64
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from application.caching import CachedProcessor, Produced
from application.inputs import Sent
from application.replies import Caller, Reply, json_reply
from contract import headers
from contract.errors import ServiceError
from operations.metrics import CACHE_REQUESTS
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


def result_headers(
    result: Result, options: Options, elapsed_ms: float, coverage: float
) -> dict[str, str]:
    """The contract's result headers; the model's foreground coverage among them (0 when it
    found no subject: segmentation/foreground.py)."""
    return {
        headers.FOREGROUND_COVERAGE: f"{coverage:.4f}",
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


def matched_tag(if_none_match: str, etag: str) -> str | None:
    """What in RFC 9110's If-None-Match matches `etag`: the tag itself (under the weak
    comparison), `*`, or nothing (None)."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    if etag in tags:
        return etag
    return "*" if "*" in tags else None


@dataclass(frozen=True)
class Answer:
    """One result made for a request, with the headers of every answer carrying one result:
    its ETag, the cache's outcome, Server-Timing and Cache-Control."""

    produced: Produced
    options: Options
    elapsed_ms: float
    headers: dict[str, str]

    @property
    def result(self) -> Result:
        return self.produced.result

    def described(self) -> dict[str, str]:
        """The contract's result headers too (remove.bg's API sends its own instead)."""
        described = result_headers(
            self.result, self.options, self.elapsed_ms, self.produced.coverage
        )
        return {**described, **self.headers}


@dataclass(frozen=True)
class Shape:
    """How a route answers with a result: the representation its ETag names, and the reply."""

    representation: Callable[[Options], str]
    reply: Callable[[Answer], Awaitable[Reply]]


def download(filename: str | None) -> Shape:
    """The image, named for download after the uploaded file."""

    async def reply(answer: Answer) -> Reply:
        name = content_disposition(download_name(filename, answer.options))
        described = {**answer.described(), headers.CONTENT_DISPOSITION: name}
        return Reply(answer.result.data, answer.result.format.mimetype, described)

    return Shape(lambda _: IMAGE, reply)


async def _json_reply(answer: Answer) -> Reply:
    described = answer.described()
    return await asyncio.to_thread(
        lambda: json_reply(result_json(answer.result, answer.options), described)
    )


JSON_RESULT = Shape(json_representation, _json_reply)  # the image in base64, described


class Results:
    def __init__(
        self, producer: CachedProcessor, cache_ttl_s: int, clock: Callable[[], float]
    ) -> None:
        self.producer = producer
        self.cache_control = {headers.CACHE_CONTROL: f"private, max-age={cache_ttl_s}"}
        self.clock = clock

    async def unchanged(self, caller: Caller, sent: Sent, shape: Shape) -> Reply | None:
        """304 when the client already holds exactly this result: no model run and no budget
        spent (the ETag follows from the input and the options alone; `*` matches only a
        result that exists, in the cache)."""
        if caller.if_none_match is None or sent.data is None:
            return None
        try:
            options = sent.options()
        except ServiceError:
            return None  # the request fails later, in the contract's order
        keys = await self.producer.keys(sent.data, options, caller.client)
        etag = keys.etag(shape.representation(options))
        match = matched_tag(caller.if_none_match, etag)
        if match is None or (match == "*" and not await self.producer.has_result(keys)):
            return None
        CACHE_REQUESTS.labels(result="not_modified").inc()
        return Reply(b"", "", {headers.ETAG: etag, **self.cache_control}, not_modified=True)

    def answer(self, produced: Produced, options: Options, shape: Shape, started: float) -> Answer:
        elapsed = self.ms_since(started)
        return Answer(
            produced,
            options,
            elapsed,
            {
                headers.ETAG: produced.keys.etag(shape.representation(options)),
                headers.X_CACHE: produced.cache,
                headers.SERVER_TIMING: server_timing(
                    produced.result.timings_ms, elapsed, produced.cache
                ),
                **self.cache_control,
            },
        )

    def ms_since(self, started: float) -> float:
        return (self.clock() - started) * 1000
