"""The request flow of every route, free of any web framework (see `Application`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from application.admission import Admission, memory_budget_bytes
from application.batch import Batches, batch_reply
from application.caching import CachedProcessor
from application.files import UploadFolder
from application.gate import RequestGate
from application.image_url import ImageUrls
from application.image_work import ImageWorkers
from application.inputs import Sent, in_base64, uploaded
from application.models import ModelService
from application.processing import ImageProcessor
from application.removebg import RemoveBg
from application.removebg_improve import Improvements
from application.replies import Caller, HealthReport, Reply, Upload, json_reply
from application.results import JSON_RESULT, Results, Shape, download
from application.wiring import Wiring
from contract import routes
from operations import health
from operations.outputs import OutputHook
from optimizer import PRESETS
from settings import Settings


class Application:
    """Every route's flow, built from the settings and given the model service. The HTTP edge
    (`gateway/routes.py`) turns requests into calls of its methods and its `Reply`s and
    `ServiceError`s into responses. Its collaborators, each in its module of `application/`:

    - `wiring`: the rate limiter and the cache store, housekeeping, the Redis watch;
    - `gate`: a slot under MAX_CONCURRENCY, then the client's budget (429, its headers);
    - `producer` (caching): one result, from the cache or made by `processor` (decoding,
      the model, compositing, encoding) with memory admitted for it (admission); each
      result goes to the output hook (`operations.outputs`: metrics, log, SAVE_OUTPUTS);
    - `results`: ETag and 304, result headers, Server-Timing, Cache-Control;
    - `removebg_api`: remove.bg's API; `batches`: a batch's files; `uploads`: /read-file.
    """

    def __init__(
        self,
        settings: Settings,
        models: ModelService,
        wiring: Wiring,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.settings, self.wiring, self.clock = settings, wiring, clock
        workers = ImageWorkers()
        self.processor = ImageProcessor(
            models, settings.model, settings.max_image_pixels, clock, workers
        )
        admission = Admission(
            settings.max_concurrency, memory_budget_bytes(settings), settings.memory_wait_s
        )
        self.gate = RequestGate(admission, wiring.limiter)
        self.producer = CachedProcessor(
            self.processor,
            admission,
            wiring.store,
            per_client=settings.cache_scope == "client",
            on_output=OutputHook(settings.output_dir if settings.save_outputs else None),
        )
        self.results = Results(self.producer, settings.cache_ttl_s, clock)
        self.urls = ImageUrls(
            settings.allow_image_url,
            settings.max_content_length,
            settings.image_url_timeout_s,
            settings.image_url_ports,
        )
        self.removebg_api = RemoveBg(self.gate, self.producer, self.results, self.urls)
        self.improvements = Improvements(settings.upload_dir, workers, self.removebg_api.image)
        self.batches = Batches(self.producer, settings, self.urls)
        self.uploads = UploadFolder(settings.upload_dir, settings.max_content_length, workers)

    @classmethod
    def from_settings(cls, settings: Settings, models: ModelService) -> Application:
        return cls(settings, models, Wiring.from_settings(settings))

    async def remove_file(
        self,
        caller: Caller,
        upload: Upload | None,
        raw_options: Mapping[str, Any],
        bg_upload: Upload | None = None,
    ) -> Reply:
        """Image in, image out, named for download."""
        sent = uploaded(routes.REMOVE, upload, raw_options, bg_upload)
        return await self._single(caller, sent, download(upload.filename if upload else None))

    async def preview(
        self,
        caller: Caller,
        upload: Upload | None,
        raw_options: Mapping[str, Any],
        bg_upload: Upload | None = None,
    ) -> Reply:
        """Image in, the JSON result out."""
        sent = uploaded(routes.PREVIEW, upload, raw_options, bg_upload)
        return await self._single(caller, sent, JSON_RESULT)

    async def remove_base64(self, caller: Caller, body: Mapping[str, Any]) -> Reply:
        """Base64 (or a data URL) in JSON in, the JSON result out."""
        return await self._single(caller, in_base64(routes.BASE64, body), JSON_RESULT)

    async def removebg(
        self,
        caller: Caller,
        fields: Mapping[str, Any],
        upload: Upload | None,
        json_wanted: bool,
        bg_upload: Upload | None = None,
    ) -> Reply:
        """remove.bg's API: its parameters, credits, headers, result shapes and errors."""
        return await self.removebg_api.remove(caller, fields, upload, json_wanted, bg_upload)

    async def remove_batch(
        self,
        caller: Caller,
        uploads: Sequence[Upload],
        raw_options: Mapping[str, Any],
        bg_upload: Upload | None = None,
    ) -> Reply:
        """Several images in, a zip of the results and `manifest.json` out; each file spends
        one unit of the budget, and one background serves them all."""
        started = self.clock()
        async with self.gate.request(caller, routes.BATCH, cost=max(1, len(uploads))):
            archive = await self.batches.archive(caller, uploads, raw_options, bg_upload)
        return batch_reply(archive, self.results.ms_since(started))

    async def read_file(self, caller: Caller, body: Mapping[str, Any]) -> Reply:
        """An image from UPLOAD_DIR, in base64."""
        async with self.gate.request(caller, routes.READ_FILE):
            return await self.uploads.reply(body.get("path"))

    async def improve(
        self, caller: Caller, fields: Mapping[str, Any], upload: Upload | None
    ) -> Reply:
        """remove.bg's improvement program: the image and its tag kept for the operator."""
        async with self.gate.request(caller, routes.IMPROVE):
            return await self.improvements.submit(caller, fields, upload)

    async def account(self, caller: Caller) -> Reply:
        """remove.bg's account call: the remaining /remove-background budget as credits."""
        return await self.removebg_api.account(caller)

    def presets(self) -> Reply:
        return json_reply({name: preset.as_options() for name, preset in PRESETS.items()})

    async def models(self) -> Reply:
        """The models `model=` accepts, with their input size and precision."""
        return json_reply(await self.processor.listing())

    async def health(self) -> HealthReport:
        checks = {
            "app": health.Check(True, "serving"),
            "model": await self.processor.model_check(),
            "redis": await self.wiring.redis_check(),
            "disk_space": health.disk_space(self.wiring.folders, self.settings.disk_min_free_mb),
            "memory": health.memory(self.settings.memory_max_percent),
            "image_work": self.processor.workers.check(),
        }
        return HealthReport(health.report(checks))

    async def _single(self, caller: Caller, sent: Sent, shape: Shape) -> Reply:
        """One result, as every single-result route answers: a 304 for a result the client
        holds (no budget spent); else a slot and the client's budget, the options and the
        image (their 400s after the 429), the result from the cache or made, and its headers.
        `sent` is what the routes differ in on the way in, `shape` on the way out."""
        started = self.clock()
        if unchanged := await self.results.unchanged(caller, sent, shape):
            return unchanged
        async with self.gate.request(caller, sent.route):
            background, options = await sent.background.read(self.urls, sent.options())
            image = await sent.image()
            produced = await self.producer.produce(caller, image, options, None, background)
            return await shape.reply(self.results.answer(produced, options, shape, started))
