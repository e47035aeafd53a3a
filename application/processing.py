"""One image through the model: read its header, decode and shrink, segment, compose and
encode.

CPU-bound steps run in the image work threads (`application.image_work`), each with the
request's `Cancellation`; the model call goes to the model service. The processor also knows
the models' input sizes and whether the model service answers. The model catalog's failures
become the contract's errors here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import numpy as np

from application.image_work import Cancellation, ImageWorkers
from application.models import ModelService
from contract.errors import InvalidParameter
from operations.health import Check
from optimizer import (
    Options,
    PreparedImage,
    Result,
    Source,
    decode_background,
    finish,
    output_size,
    prepare,
    read_source,
)
from optimizer.decode import open_background
from optimizer.geometry import Size
from segmentation import CATALOG, Segmentation, UnknownModel, get_spec

T = TypeVar("T")
HEALTH_TIMEOUT_S = 5.0
# A model that answered this recently is up: /health need not queue behind busy workers.
MODEL_RECENTLY_S = 30.0


class ImageProcessor:
    def __init__(
        self,
        models: ModelService,
        default_model: str,
        max_input_pixels: int,
        clock: Callable[[], float],
        workers: ImageWorkers | None = None,
    ) -> None:
        self.models = models
        self.default_model = default_model
        self.max_input_pixels = max_input_pixels
        self.clock = clock
        self.workers = workers or ImageWorkers()
        self.model_sizes: dict[str, int] = {}
        self.model_answered_at = -MODEL_RECENTLY_S

    async def read(self, data: bytes, options: Options, cancellation: Cancellation) -> Source:
        """The input's header, read once per request (off the event loop, bounded)."""
        return await self.workers.run(
            cancellation,
            partial(
                read_source,
                data,
                options,
                max_input_pixels=self.max_input_pixels,
                cancelled=cancellation,
            ),
        )

    async def process(
        self,
        source: Source,
        options: Options,
        cancellation: Cancellation,
        segmentation: Segmentation | None = None,
        background: bytes | None = None,
    ) -> tuple[Result, Segmentation]:
        """The result, and the segmentation it was made with (`segmentation` when given: no
        model run); `background`: the `bg_image`'s bytes."""
        if segmentation is None:
            prepared, segmentation = await self.segment(source, options, cancellation)
        else:
            prepared = await self.workers.run(
                cancellation,
                partial(prepare, source, options, model_size=None, cancelled=cancellation),
            )
        backdrop = None
        if background is not None:
            backdrop = await self.workers.run(
                cancellation,
                partial(
                    decode_background,
                    background,
                    max_input_pixels=self.max_input_pixels,
                    canvas=output_size(source.image.size, options),
                ),
            )
        result = await self.workers.run(
            cancellation,
            partial(finish, prepared, segmentation.mask, options, backdrop, cancelled=cancellation),
        )
        return result, segmentation

    async def background_size(self, background: bytes, cancellation: Cancellation) -> Size:
        """A background image's size, from its header (a bad one: 400 for `bg_image`)."""
        opened = await self.workers.run(
            cancellation,
            partial(open_background, background, max_input_pixels=self.max_input_pixels),
        )
        return opened.size

    async def segment(
        self, source: Source, options: Options, cancellation: Cancellation
    ) -> tuple[PreparedImage, Segmentation]:
        """Decode and run the model: the photo as prepared, and its segmentation (the mask at
        model size and the foreground coverage)."""
        model_size = await self.model_size(options.model)
        prepared = await self.workers.run(
            cancellation,
            partial(prepare, source, options, model_size=model_size, cancelled=cancellation),
        )
        assert prepared.model_input is not None  # prepared with a model size
        started = self.clock()
        records = await self._answer(
            self.models.segment(prepared.model_input[np.newaxis], self._named(options.model))
        )
        prepared.timings_ms["inference"] = round((self.clock() - started) * 1000, 1)
        return prepared, Segmentation.from_record(records[0])

    async def model_size(self, name: str | None) -> int:
        if name is None or name == self.default_model:
            try:
                return get_spec(self.default_model).input_size
            except UnknownModel as unknown:
                raise InvalidParameter(str(unknown)) from None
        if name not in self.model_sizes:
            self.model_sizes = await self.available()
        if name not in self.model_sizes:
            raise InvalidParameter(f"Model '{name}' is not in the model store")
        return self.model_sizes[name]

    async def available(self) -> dict[str, int]:
        return await self._answer(self.models.available())

    async def listing(self) -> dict[str, Any]:
        """The models `model=` accepts, with their input size and precision."""
        sizes = await self.available()
        return {
            "default": self.default_model,
            "models": [
                {
                    "name": name,
                    "input_size": size,
                    "precision": CATALOG[name].precision,
                    "batched": name == self.default_model,
                }
                for name, size in sorted(sizes.items())
            ],
        }

    async def model_check(self) -> Check:
        since = self.clock() - self.model_answered_at
        if since < MODEL_RECENTLY_S:
            return Check(True, f"{self.default_model} answered {since:.0f} s ago")
        try:
            tag = await asyncio.wait_for(self._answer(self.models.ping()), HEALTH_TIMEOUT_S)
        except Exception as exc:  # any failure to answer means the model is not serving
            return Check(False, f"model service not answering: {type(exc).__name__}")
        return Check(True, f"{tag} loaded")

    def _named(self, name: str | None) -> str | None:
        """None for the default model, which runs batched."""
        return None if name in (None, self.default_model) else name

    async def _answer(self, call: Awaitable[T]) -> T:
        answer = await call
        self.model_answered_at = self.clock()
        return answer
