"""Producing one result through the cache: a finished result is reused (`hit`), a cached mask
skips the model (`mask`), anything else runs in full (`miss`) and is remembered.

Memory is admitted only for work that decodes pixels; a hit costs a lookup and no admission.
A cached mask is reused only when it was made from a decode at the same scale (a JPEG decoded
at a reduced scale for a small box gives a slightly different mask than a full decode), so a
result's bytes never depend on what was asked before: one ETag, one set of bytes. Every result
produced goes to the output hook (`operations.outputs`: metrics, log fields, SAVE_OUTPUTS).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

from application.admission import Admission
from application.image_work import Cancellation
from application.processing import ImageProcessor
from application.replies import Caller
from cache import CacheKeys, CacheStore, Lookup, input_digest
from cache.keys import LARGE_INPUT_BYTES
from operations.metrics import CACHE_REQUESTS, CACHE_STORED_BYTES
from operations.outputs import Output, OutputHook
from optimizer import Options, OutputFormat, Result
from optimizer.geometry import Bounds
from optimizer.masks import mask_from_png, mask_id, mask_to_png, output_id
from segmentation import CATALOG, Segmentation
from segmentation.foreground import subject_found

HIT, MASK, MISS = "hit", "mask", "miss"


@dataclass(frozen=True)
class Produced:
    result: Result
    coverage: float  # the model's foreground coverage (`segmentation.foreground`)
    cache: str  # hit, mask or miss
    keys: CacheKeys

    @property
    def subject_found(self) -> bool:
        return subject_found(self.coverage)

    @property
    def output(self) -> Output:
        result = self.result
        return Output(
            result.data,
            result.format.value,
            result.format.extension,
            result.input_bytes,
            result.compression_ratio,
            result.timings_ms,
            self.cache,
        )


class CachedProcessor:
    def __init__(
        self,
        processor: ImageProcessor,
        admission: Admission,
        store: CacheStore | None,
        *,
        per_client: bool = False,
        on_output: OutputHook | None = None,
    ) -> None:
        self.processor = processor
        self.admission = admission
        self.store = store
        self.per_client = per_client  # CACHE_SCOPE=client: each client has a cache of its own
        self.on_output = on_output or OutputHook()

    async def keys(self, data: bytes, options: Options, client: str | None = None) -> CacheKeys:
        """The keys of `client`'s request (its cache's, or the one shared by every client)."""
        namespace = client_namespace(client) if self.per_client and client is not None else ""
        digest = (
            await asyncio.to_thread(input_digest, data)
            if len(data) > LARGE_INPUT_BYTES
            else input_digest(data)
        )
        model = options.model or self.processor.default_model
        spec = CATALOG.get(model)
        model_id = f"{model}:{spec.md5 if spec else ''}{mask_id(options)}"
        return CacheKeys(digest, model_id, output_id(options), namespace)

    async def has_result(self, keys: CacheKeys) -> bool:
        """Whether the finished result is cached (what `If-None-Match: *` asks)."""
        if self.store is None:
            return False
        return (await self.store.lookup(keys)).result is not None

    async def produce(
        self,
        caller: Caller,
        data: bytes,
        options: Options,
        wait_s: float | None = None,
        background: bytes | None = None,
    ) -> Produced:
        """The caller's result: from the cache, or made with memory admitted for it (waited
        for up to `wait_s`, MEMORY_WAIT_S by default). `background`: the bytes of the
        `bg_image` that `options.bg_image` names by digest."""
        keys = await self.keys(data, options, caller.client)
        found = await self.store.lookup(keys) if self.store is not None else Lookup()
        cached = _cached_result(found.result, len(data)) if found.result is not None else None
        if cached is not None:
            produced = Produced(*cached, HIT, keys)
        else:
            cancellation = Cancellation()
            source = await self.processor.read(data, options, cancellation)
            backdrop = None
            if background is not None:
                backdrop = await self.processor.background_size(background, cancellation)
            async with self.admission.memory(source.bytes_needed(options, backdrop), wait_s):
                known = await self._cached_mask(found, options, source.decode_scale)
                result, segmentation = await self.processor.process(
                    source, options, cancellation, known, background
                )
            cache = MISS if known is None else MASK
            produced = Produced(result, segmentation.coverage, cache, keys)
            made = segmentation if known is None else None
            await self._remember(keys, produced, made, source.decode_scale)
        CACHE_REQUESTS.labels(result=produced.cache).inc()
        await self.on_output(caller.request_id, caller.log, produced.output)
        return produced

    async def _cached_mask(
        self, found: Lookup, options: Options, decode_scale: int
    ) -> Segmentation | None:
        """The cached segmentation, if its mask was made from a decode at this scale."""
        if found.mask is None:
            return None
        metadata, png = found.mask
        coverage = metadata.get("coverage")
        if metadata.get("decode_scale") != decode_scale or not isinstance(coverage, float):
            return None
        mask = mask_from_png(png, await self.processor.model_size(options.model))
        return None if mask is None else Segmentation(mask, coverage)

    async def _remember(
        self,
        keys: CacheKeys,
        produced: Produced,
        segmentation: Segmentation | None,
        decode_scale: int,
    ) -> None:
        if self.store is None:
            return
        entries: list[tuple[str, dict[str, Any], bytes]] = [
            (keys.result, _result_metadata(produced), produced.result.data)
        ]
        if segmentation is not None:
            png = await asyncio.to_thread(mask_to_png, segmentation.mask)
            metadata = {"decode_scale": decode_scale, "coverage": segmentation.coverage}
            entries.append((keys.mask, metadata, png))
        await self.store.save(entries)
        if self.store.stored_bytes is not None:
            CACHE_STORED_BYTES.set(self.store.stored_bytes)


def client_namespace(client: str) -> str:
    """A client's cache, named by a digest of its key (which names an API key or an address)."""
    return hashlib.sha256(client.encode("utf-8")).hexdigest()[:16]


def _result_metadata(produced: Produced) -> dict[str, Any]:
    result = produced.result
    return {
        "format": result.format.value,
        "width": result.width,
        "height": result.height,
        "foreground": list(result.foreground) if result.foreground else None,
        "coverage": produced.coverage,
    }


def _cached_result(
    entry: tuple[dict[str, Any], bytes], input_bytes: int
) -> tuple[Result, float] | None:
    """The cached result and its coverage, or None when its description does not read back
    (a miss)."""
    metadata, data = entry
    try:
        foreground = metadata.get("foreground")
        bounds: Bounds | None = None
        if foreground:  # a box of any other length is a ValueError: a miss
            left, top, right, bottom = (int(side) for side in foreground)
            bounds = (left, top, right, bottom)
        result = Result(
            data,
            OutputFormat(metadata["format"]),
            int(metadata["width"]),
            int(metadata["height"]),
            input_bytes,
            {},
            bounds,
        )
        return result, float(metadata["coverage"])
    except (KeyError, TypeError, ValueError):
        return None
