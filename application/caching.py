"""Producing one result through the cache: a finished result is reused (`hit`), a cached mask
skips the model (`mask`), anything else runs in full (`miss`) and is remembered.

Memory is admitted only for work that decodes pixels; a hit costs a lookup and no admission.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from application.admission import Admission
from application.processing import ImageProcessor
from cache import CacheKeys, CacheStore, Lookup, input_digest
from cache.keys import LARGE_INPUT_BYTES
from operations.metrics import CACHE_REQUESTS, CACHE_STORED_BYTES
from optimizer import Options, OutputFormat, Result
from optimizer.geometry import Bounds
from optimizer.pipeline import mask_from_png, mask_id, mask_to_png, memory_needed, output_id
from segmentation import CATALOG

HIT, MASK, MISS = "hit", "mask", "miss"


@dataclass(frozen=True)
class Produced:
    result: Result
    cache: str  # hit, mask or miss
    keys: CacheKeys


class CachedProcessor:
    def __init__(
        self,
        processor: ImageProcessor,
        admission: Admission,
        store: CacheStore | None,
        max_input_pixels: int,
    ) -> None:
        self.processor = processor
        self.admission = admission
        self.store = store
        self.max_input_pixels = max_input_pixels

    async def keys(self, data: bytes, options: Options) -> CacheKeys:
        digest = (
            await asyncio.to_thread(input_digest, data)
            if len(data) > LARGE_INPUT_BYTES
            else input_digest(data)
        )
        model = options.model or self.processor.default_model
        spec = CATALOG.get(model)
        return CacheKeys(
            digest, f"{model}:{spec.md5 if spec else ''}{mask_id(options)}", output_id(options)
        )

    async def produce(self, data: bytes, options: Options, wait_s: float | None = None) -> Produced:
        keys = await self.keys(data, options)
        found = await self.store.lookup(keys) if self.store is not None else Lookup()
        cached = _cached_result(found.result, len(data)) if found.result is not None else None
        if cached is not None:
            produced = Produced(cached, HIT, keys)
        else:
            needed = memory_needed(data, options, max_input_pixels=self.max_input_pixels)
            async with self.admission.memory(needed, wait_s):
                mask = await self._cached_mask(found, options)
                result, made_mask = await self.processor.process(data, options, mask)
            produced = Produced(result, MISS if mask is None else MASK, keys)
            await self._remember(keys, result, made_mask if mask is None else None)
        CACHE_REQUESTS.labels(result=produced.cache).inc()
        return produced

    async def _cached_mask(self, found: Lookup, options: Options) -> np.ndarray | None:
        if found.mask is None:
            return None
        size = await self.processor.model_size(options.model)
        return mask_from_png(found.mask[1], size)

    async def _remember(self, keys: CacheKeys, result: Result, mask: np.ndarray | None) -> None:
        if self.store is None:
            return
        entries: list[tuple[str, dict[str, Any], bytes]] = [
            (keys.result, _result_metadata(result), result.data)
        ]
        if mask is not None:
            entries.append((keys.mask, {}, await asyncio.to_thread(mask_to_png, mask)))
        await self.store.save(entries)
        if self.store.stored_bytes is not None:
            CACHE_STORED_BYTES.set(self.store.stored_bytes)


def _result_metadata(result: Result) -> dict[str, Any]:
    return {
        "format": result.format.value,
        "width": result.width,
        "height": result.height,
        "foreground": list(result.foreground) if result.foreground else None,
    }


def _cached_result(entry: tuple[dict[str, Any], bytes], input_bytes: int) -> Result | None:
    """The cached result, or None when its description does not read back (a miss)."""
    metadata, data = entry
    try:
        foreground = metadata.get("foreground")
        bounds: Bounds | None = None
        if foreground:  # a box of any other length is a ValueError: a miss
            left, top, right, bottom = (int(side) for side in foreground)
            bounds = (left, top, right, bottom)
        return Result(
            data,
            OutputFormat(metadata["format"]),
            int(metadata["width"]),
            int(metadata["height"]),
            input_bytes,
            {},
            bounds,
        )
    except (KeyError, TypeError, ValueError):
        return None
