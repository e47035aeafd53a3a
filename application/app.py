"""The request flow of every route, free of any web framework.

`Application` is built from the settings and given what it needs from outside: the model
service, the rate limiter and a clock. The HTTP edge (`gateway/routes.py`) turns requests into
calls of its methods and its `Reply`s and `ServiceError`s into responses.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from application import removebg
from application.admission import Admission, memory_budget_bytes
from application.batch import BatchEntry, batch_archive, unique_names
from application.caching import CachedProcessor, Produced
from application.files import read_upload
from application.image_work import Cancellation, ImageWorkers
from application.inputs import decode_base64_image, decoded_or_none
from application.models import ModelService
from application.processing import ImageProcessor
from application.redis_roles import limiter_and_store, redis_check, redis_roles
from application.replies import Caller, Reply, Upload, json_reply
from application.results import (
    IMAGE,
    REMOVEBG_JSON,
    content_disposition,
    download_name,
    json_representation,
    matched_tag,
    result_headers,
    result_json,
    server_timing,
)
from cache import CacheStore
from contract import headers, routes
from contract.errors import (
    InvalidImage,
    InvalidParameter,
    RateLimited,
    ServiceError,
    Unavailable,
)
from operations import health
from operations.metrics import (
    CACHE_REQUESTS,
    COMPRESSION_RATIO,
    OUTPUT_BYTES,
    RATE_LIMITED,
    report_redis_roles,
)
from operations.retention import start_retention
from optimizer import PRESETS, Options, Result, parse_options
from optimizer.decode import identify_format
from ratelimit import RateLimiter, RateLimitExceeded, RedisUnavailable, short_hash
from segmentation import CATALOG
from settings import Settings

log = logging.getLogger("bg_remover.application")
ZIP = "application/zip"
BATCH_ARCHIVE_NAME = "images_no_bg.zip"
RETENTION_SWEEP_S = 600
REDIS_PROBE_S = 10  # how often each Redis role is pinged for bg_remover_redis_up


@dataclass(frozen=True)
class HealthReport:
    body: dict[str, Any]

    @property
    def unhealthy(self) -> bool:
        return self.body["status"] == "unhealthy"


class Application:
    def __init__(
        self,
        settings: Settings,
        models: ModelService,
        limiter: RateLimiter,
        clock: Callable[[], float] = time.perf_counter,
        store: CacheStore | None = None,
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.clock = clock
        self.workers = ImageWorkers()
        self.processor = ImageProcessor(
            models, settings.model, settings.max_image_pixels, clock, self.workers
        )
        self.admission = Admission(
            settings.max_concurrency, memory_budget_bytes(settings), settings.memory_wait_s
        )
        self.producer = CachedProcessor(
            self.processor, self.admission, store, settings.max_image_pixels
        )

    @classmethod
    def from_settings(cls, settings: Settings, models: ModelService) -> Application:
        limiter, store = limiter_and_store(settings)
        return cls(settings, models, limiter, store=store)

    def start_housekeeping(self) -> threading.Event:
        """Create the file folders and sweep expired files until the returned event is set."""
        folders = [self.settings.upload_dir, self.settings.output_dir]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        return start_retention(folders, self.settings.file_ttl_hours * 3600, RETENTION_SWEEP_S)

    async def watch_redis(self, interval_s: float = REDIS_PROBE_S) -> None:
        """Report whether each Redis role answers (`bg_remover_redis_up`) until cancelled, so
        an outage shows even while no request arrives."""
        while True:
            report_redis_roles(await self.redis_roles())
            await asyncio.sleep(interval_s)

    async def redis_roles(self) -> dict[str, bool | None]:
        """Each Redis role -> its Redis answers, or None where the role has no Redis."""
        return await redis_roles(self.limiter, self.producer.store)

    async def remove_file(
        self, caller: Caller, upload: Upload | None, raw_options: Mapping[str, Any]
    ) -> Reply:
        """Image in, image out, named for download."""
        started = self.clock()
        data = upload.data if upload else None
        if unchanged := await self._unchanged(
            caller, data, lambda: parse_options(raw_options), lambda _: IMAGE
        ):
            return unchanged
        async with self._request(caller, routes.REMOVE):
            options, produced = await self._produce_upload(caller, upload, raw_options)
        name = download_name(upload.filename if upload else None, options)
        reply_headers = self._single_headers(produced, options, IMAGE, started)
        reply_headers[headers.CONTENT_DISPOSITION] = content_disposition(name)
        return Reply(produced.result.data, produced.result.format.mimetype, reply_headers)

    async def preview(
        self, caller: Caller, upload: Upload | None, raw_options: Mapping[str, Any]
    ) -> Reply:
        """Image in, the JSON result out."""
        started = self.clock()
        data = upload.data if upload else None
        if unchanged := await self._unchanged(
            caller, data, lambda: parse_options(raw_options), json_representation
        ):
            return unchanged
        async with self._request(caller, routes.PREVIEW):
            options, produced = await self._produce_upload(caller, upload, raw_options)
            return await self._json_result(produced, options, started)

    async def remove_base64(self, caller: Caller, body: Mapping[str, Any]) -> Reply:
        """Base64 (or a data URL) in JSON in, the JSON result out."""
        started = self.clock()
        raw_options = {key: value for key, value in body.items() if key != "image"}
        data = decoded_or_none(body.get("image"))
        if unchanged := await self._unchanged(
            caller, data, lambda: parse_options(raw_options), json_representation
        ):
            return unchanged
        async with self._request(caller, routes.BASE64):
            options = parse_options(raw_options)
            produced = await self._produce(caller, decode_base64_image(body.get("image")), options)
            return await self._json_result(produced, options, started)

    async def remove_batch(
        self, caller: Caller, uploads: Sequence[Upload], raw_options: Mapping[str, Any]
    ) -> Reply:
        """Several images in, a zip of the results and `manifest.json` out. Each file spends
        one unit; one that fails does not fail the others. At most BATCH_PARALLELISM files
        are in work at once, each admitted by its own memory needs."""
        started = self.clock()
        async with self._request(caller, routes.BATCH, cost=max(1, len(uploads))):
            if not uploads:
                raise InvalidImage("No images were sent in the 'files' field")
            if len(uploads) > self.settings.max_batch_files:
                raise InvalidParameter(f"At most {self.settings.max_batch_files} files per batch")
            options = parse_options(raw_options)
            names = unique_names(download_name(upload.filename, options) for upload in uploads)
            in_work = asyncio.Semaphore(self.settings.batch_parallelism)
            entries = await asyncio.gather(
                *(
                    self._batch_entry(caller, upload, name, options, in_work)
                    for upload, name in zip(uploads, names, strict=True)
                )
            )
            archive = await asyncio.to_thread(batch_archive, entries)
        return Reply(
            archive,
            ZIP,
            {
                headers.CONTENT_DISPOSITION: content_disposition(BATCH_ARCHIVE_NAME),
                headers.SERVER_TIMING: server_timing({}, self._ms_since(started), None),
            },
        )

    async def removebg(
        self, caller: Caller, fields: Mapping[str, Any], upload: Upload | None, json_wanted: bool
    ) -> Reply:
        """remove.bg's API: its parameters, headers and result shapes."""
        started = self.clock()
        representation = REMOVEBG_JSON if json_wanted else IMAGE
        if unchanged := await self._unchanged(
            caller,
            removebg.sent_image_bytes(fields, upload),
            lambda: removebg.parse_removebg(fields).tagged,
            lambda _: representation,
        ):
            return unchanged
        async with self._request(caller, routes.REMOVEBG):
            request = removebg.parse_removebg(fields)
            data = await removebg.image_bytes(fields, upload, self.settings)
            if request.archive:
                return await self._removebg_zip(data, request.options, json_wanted)
            produced = await self._produce(caller, data, request.options)
            result = produced.result
            reply_headers = removebg.response_headers(
                (result.width, result.height), result.foreground
            )
            reply_headers.update(
                self._single_headers(
                    produced, request.options, representation, started, described=False
                )
            )
            if json_wanted:
                return await asyncio.to_thread(
                    lambda: json_reply(
                        removebg.json_result(result.data, result.foreground), reply_headers
                    )
                )
        return Reply(result.data, result.format.mimetype, reply_headers)

    async def read_file(self, caller: Caller, body: Mapping[str, Any]) -> Reply:
        """An image from UPLOAD_DIR, in base64."""
        async with self._request(caller, routes.READ_FILE):
            found = await asyncio.to_thread(
                read_upload,
                self.settings.upload_dir,
                body.get("path"),
                self.settings.max_content_length,
            )
            image_format = await self.workers.run(Cancellation(), identify_format, found.data)
            return await asyncio.to_thread(
                lambda: json_reply(
                    {
                        "success": True,
                        "filename": found.name,
                        "mimetype": f"image/{image_format.lower()}",
                        "size": len(found.data),
                        "image": base64.b64encode(found.data).decode("ascii"),
                    }
                )
            )

    async def account(self, caller: Caller) -> Reply:
        """remove.bg's account call: the remaining /remove-background budget as credits."""
        try:
            status = await self.limiter.peek(routes.BUDGETS[routes.REMOVE], caller.client)
        except RedisUnavailable:
            raise Unavailable("The budget cannot be read: Redis is unreachable") from None
        credits = status.remaining if status is not None else removebg.UNLIMITED_CREDITS
        return json_reply(removebg.account(credits))

    def presets(self) -> Reply:
        return json_reply({name: preset.as_options() for name, preset in PRESETS.items()})

    async def models(self) -> Reply:
        """The models `model=` accepts, with their input size and precision."""
        sizes = await self.processor.available()
        default = self.settings.model
        return json_reply(
            {
                "default": default,
                "models": [
                    {
                        "name": name,
                        "input_size": size,
                        "precision": CATALOG[name].precision,
                        "batched": name == default,
                    }
                    for name, size in sorted(sizes.items())
                ],
            }
        )

    async def health(self) -> HealthReport:
        folders = [self.settings.upload_dir, self.settings.output_dir]
        checks = {
            "app": health.Check(True, "serving"),
            "model": await self.processor.model_check(),
            "redis": await redis_check(
                self.limiter, self.producer.store, self.settings.rate_limit_fail_open
            ),
            "disk_space": health.disk_space(folders, self.settings.disk_min_free_mb),
            "memory": health.memory(self.settings.memory_max_percent),
            "image_work": self.workers.check(),
        }
        return HealthReport(health.report(checks))

    @asynccontextmanager
    async def _request(self, caller: Caller, route: str, cost: int = 1) -> AsyncIterator[None]:
        """A rate-limited request at work: a slot among MAX_CONCURRENCY, then the budget."""
        with self.admission.request():
            await self._spend(caller, route, cost)
            yield

    async def _spend(self, caller: Caller, route: str, cost: int = 1) -> None:
        """Spend the caller's budget for `route` before anything else is looked at
        (contract order: 401 -> 413 -> 429 -> 400)."""
        budget = routes.BUDGETS[route]
        try:
            status = await self.limiter.hit(budget, caller.client, cost)
        except RateLimitExceeded as exceeded:
            caller.headers.update(exceeded.status.headers())
            RATE_LIMITED.labels(endpoint=budget).inc()
            raise RateLimited(
                f"Limit of {exceeded.status.limit} per hour reached: this request needs {cost}, "
                f"{exceeded.status.remaining} left"
            ) from None
        except RedisUnavailable:
            raise Unavailable("Rate limits cannot be checked: Redis is unreachable") from None
        if status is not None:
            caller.headers.update(status.headers())

    async def _produce_upload(
        self, caller: Caller, upload: Upload | None, raw_options: Mapping[str, Any]
    ) -> tuple[Options, Produced]:
        options = parse_options(raw_options)
        if upload is None:
            raise InvalidImage("No image was sent in the 'file' field")
        return options, await self._produce(caller, upload.data, options)

    async def _produce(
        self, caller: Caller, data: bytes, options: Options, wait_s: float | None = None
    ) -> Produced:
        produced = await self.producer.produce(data, options, wait_s, self._namespace(caller))
        self._observe(caller, produced)
        if self.settings.save_outputs:
            await asyncio.to_thread(self._save, caller, produced.result)
        return produced

    async def _unchanged(
        self,
        caller: Caller,
        data: bytes | None,
        options_of: Callable[[], Options | None],
        representation: Callable[[Options], str],
    ) -> Reply | None:
        """304 when the client already holds exactly this result: no model run and no budget
        spent (the ETag follows from the input and the options alone; `*` matches only a
        result that exists, in the cache). `options_of` gives None for an answer without an
        ETag."""
        if caller.if_none_match is None or data is None:
            return None
        try:
            options = options_of()
        except ServiceError:
            return None  # the request fails later, in the contract's order
        if options is None:
            return None
        keys = await self.producer.keys(data, options, self._namespace(caller))
        etag = keys.etag(representation(options))
        match = matched_tag(caller.if_none_match, etag)
        if match is None or (match == "*" and not await self.producer.has_result(keys)):
            return None
        CACHE_REQUESTS.labels(result="not_modified").inc()
        return Reply(b"", "", {headers.ETAG: etag, **self._cache_control()}, not_modified=True)

    async def _batch_entry(
        self,
        caller: Caller,
        upload: Upload,
        name: str,
        options: Options,
        in_work: asyncio.Semaphore,
    ) -> BatchEntry:
        entry = BatchEntry(upload.filename or "image", name, len(upload.data))
        try:
            async with in_work:
                produced = await self._produce(
                    caller, upload.data, options, wait_s=self.settings.request_timeout_s
                )
        except ServiceError as error:  # that file's alone
            entry.error = error
        except Exception as error:  # a fault with this file must not fail the others
            log.error("batch file %s failed", caller.request_id, exc_info=error)
            entry.error = ServiceError("This file could not be processed; the error was logged")
        else:
            entry.data, entry.mimetype = produced.result.data, produced.result.format.mimetype
            entry.etag, entry.cache = produced.keys.etag(IMAGE), produced.cache
        return entry

    async def _removebg_zip(self, data: bytes, options: Options, json_wanted: bool) -> Reply:
        """remove.bg's zip format: the colours and the matte as two files (not cached)."""
        cancellation = Cancellation()
        source = await self.processor.read(data, options, cancellation)
        async with self.admission.memory(source.bytes_needed(options)):
            prepared, mask = await self.processor.infer(source, options, cancellation)
            zipped = await self.workers.run(
                cancellation, removebg.zip_result, prepared, mask, options
            )
        reply_headers = removebg.response_headers(zipped.size, zipped.foreground)
        if json_wanted:
            return await asyncio.to_thread(
                lambda: json_reply(
                    removebg.json_result(zipped.data, zipped.foreground), reply_headers
                )
            )
        return Reply(zipped.data, ZIP, reply_headers)

    async def _json_result(self, produced: Produced, options: Options, started: float) -> Reply:
        reply_headers = self._single_headers(
            produced, options, json_representation(options), started
        )
        return await asyncio.to_thread(
            lambda: json_reply(result_json(produced.result, options), reply_headers)
        )

    def _single_headers(
        self,
        produced: Produced,
        options: Options,
        representation: str,
        started: float,
        described: bool = True,
    ) -> dict[str, str]:
        """Headers of a response carrying one result: the contract's result headers (unless
        remove.bg's replace them), its ETag, cache outcome and Server-Timing."""
        elapsed = self._ms_since(started)
        reply_headers = result_headers(produced.result, options, elapsed) if described else {}
        reply_headers.update(
            {
                headers.ETAG: produced.keys.etag(representation),
                headers.X_CACHE: produced.cache,
                headers.SERVER_TIMING: server_timing(
                    produced.result.timings_ms, elapsed, produced.cache
                ),
                **self._cache_control(),
            }
        )
        return reply_headers

    def _namespace(self, caller: Caller) -> str:
        """Whose cache a request uses: everyone's, or (CACHE_SCOPE=client) its client's."""
        return short_hash(caller.client) if self.settings.cache_scope == "client" else ""

    def _cache_control(self) -> dict[str, str]:
        return {headers.CACHE_CONTROL: f"private, max-age={self.settings.cache_ttl_s}"}

    def _observe(self, caller: Caller, produced: Produced) -> None:
        """Metrics and log fields of one produced image (a batch logs its last one)."""
        result = produced.result
        fmt = result.format.value
        OUTPUT_BYTES.labels(format=fmt).observe(result.output_bytes)
        COMPRESSION_RATIO.labels(format=fmt).observe(1 - result.output_bytes / result.input_bytes)
        caller.log.update(
            {
                "input_bytes": result.input_bytes,
                "output_bytes": result.output_bytes,
                "compression_ratio": result.compression_ratio,
                "format": fmt,
                "cache": produced.cache,
                **result.timings_ms,
            }
        )

    def _save(self, caller: Caller, result: Result) -> None:
        name = f"{caller.request_id}-{time.time_ns()}.{result.format.extension}"
        (self.settings.output_dir / name).write_bytes(result.data)

    def _ms_since(self, started: float) -> float:
        return (self.clock() - started) * 1000
