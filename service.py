"""BentoML wiring: the model service, the API service, their routes and middleware.

    Segmenter           holds the ONNX model; a batchable API from uint8 photos to uint8 masks
    BackgroundRemover   the public HTTP API (FastAPI routes mounted on BentoML): decodes,
                        validates, spends rate-limit budget, calls Segmenter, optimizes, answers
                        as ../shared/API.md says

Domain logic lives in `optimizer/`, `segmentation/`, `ratelimit/`, `contract/` and
`operations/`; HTTP plumbing that is not BentoML-specific in `gateway/`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, Any

import bentoml
import numpy as np
from fastapi import Body, FastAPI, Request, UploadFile
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from contract import removebg
from contract.errors import InvalidImage, InvalidParameter, Overloaded, ServiceError, Unavailable
from contract.requests import BatchEntry, batch_archive, decode_base64_image, unique_names
from contract.responses import content_disposition, download_name, result_headers, result_json
from contract.uploads import read_upload, resolve_upload_path
from gateway.body_limit import BodySizeLimit
from gateway.concurrency import ConcurrencyLimit
from gateway.errors import install_error_handlers
from gateway.form import FormOptions, ImageFile, ImageFiles, RemoveBgFields, RemoveBgRequestFields
from gateway.identity import ClientIdentity
from gateway.image_url import fetch_image_url
from gateway.metrics_access import MetricsAccess
from gateway.observe import RequestObserver, request_log
from gateway.rate_limit import budget
from gateway.response_headers import ResponseHeaders
from gateway.responses import JsonErrors
from operations import health
from operations.logs import configure_logging
from operations.metrics import COMPRESSION_RATIO, INFERENCE_BATCH_SIZE, OUTPUT_BYTES
from operations.retention import start_retention
from optimizer import PRESETS, Options, PreparedImage, Result, finish, parse_options, prepare
from optimizer.decode import identify_format
from optimizer.geometry import subject_bounds
from optimizer.options import Margin
from optimizer.pipeline import shape_layers
from ratelimit import RateLimiter
from segmentation import SegmentationSession, get_spec
from segmentation.catalog import STORE_LABELS, STORE_MODEL_FILE
from settings import get_settings

settings = get_settings()
# uvicorn (started by BentoML) trusts X-Forwarded-For from 127.0.0.1 unless told otherwise;
# who the client is must be decided by TRUSTED_PROXIES alone (gateway/identity.py).
os.environ["FORWARDED_ALLOW_IPS"] = ""
configure_logging(settings.log_level, settings.log_format, settings.log_file)

PROCESSING_ROUTES = (
    "/remove-background", "/remove-background-preview", "/remove-background-base64",
    "/remove-background-batch", "/read-file", "/v1.0/removebg",
)
ROUTES = (*PROCESSING_ROUTES, "/presets", "/health", "/v1.0/account")
OPEN_ROUTES = ("/health", "/livez", "/readyz", "/healthz", "/metrics", "/", "/docs.json",
               "/schema.json", "/playground")
# Static pages: Swagger UI's assets and the playground (which asks for a key for API calls).
OPEN_PREFIXES = ("/static_content/", "/playground/")
PLAYGROUND_DIR = Path(__file__).resolve().parent / "playground"
MODEL_CALL_RETRY_AFTER = "5"
HEALTH_TIMEOUT_S = 5.0
# A model that answered this recently is up: /health need not queue behind busy workers.
MODEL_RECENTLY_S = 30.0
RETENTION_SWEEP_S = 600

limiter = RateLimiter(
    limits={endpoint: f"{amount}/hour" for endpoint, amount in settings.hourly_limits.items()},
    redis_url=settings.redis_url,
    strategy=settings.rate_limit_strategy,
    fail_open=settings.rate_limit_fail_open,
    enabled=settings.rate_limit_enabled,
    socket_timeout=settings.redis_socket_timeout,
    retry_interval=settings.redis_retry_interval,
)


def open_session(stored: bentoml.Model) -> SegmentationSession:
    return SegmentationSession(
        stored.path_of(STORE_MODEL_FILE), get_spec(stored.tag.name),
        threads=settings.model_threads, run_batch=settings.inference_run_batch,
    )


@bentoml.service(
    name="segmenter",
    workers=settings.model_workers,
    traffic={"timeout": settings.request_timeout_s},
    # BentoML recycles this connection every 100 calls and drops those in flight (STACK-FACTS).
    runner_connection={"max_requests": 10**9, "max_age": 1e7},
)
class Segmenter:
    model = bentoml.models.BentoModel(settings.model)

    def __init__(self) -> None:
        self.default = open_session(self.model)
        self.others: dict[str, SegmentationSession] = {}

    @bentoml.api(
        batchable=True,
        max_batch_size=settings.max_batch_size,
        max_latency_ms=settings.max_latency_ms,
    )
    def segment(self, images: np.ndarray) -> np.ndarray:
        """N x S x S x 3 uint8 photos -> N x S x S uint8 masks with the served model."""
        INFERENCE_BATCH_SIZE.observe(len(images))
        return self.default.predict(images)

    @bentoml.api
    def segment_with(self, model_name: str, images: np.ndarray) -> np.ndarray:
        """The same with another model from the store, loaded on first use (not batched)."""
        if model_name not in self.others:
            stored = bentoml.models.get(model_name)
            self.others[model_name] = open_session(stored)
        INFERENCE_BATCH_SIZE.observe(len(images))
        return self.others[model_name].predict(images)

    @bentoml.api
    def models(self) -> dict[str, int]:
        """Models this service can run: name -> square input size."""
        stored = [
            model.tag.name for model in bentoml.models.list()
            if STORE_LABELS.items() <= model.info.labels.items()
        ]
        return {name: get_spec(name).input_size for name in {*stored, settings.model}}

    @bentoml.api
    def loaded(self) -> str:
        """The served model's tag: answering at all proves the model is loaded."""
        return str(self.model.tag)


app = FastAPI(
    title="Background Remover API",
    summary="Cut the subject out of a photo and get it back optimized for the web.",
    docs_url=None, redoc_url=None, openapi_url=None,  # BentoML serves /docs.json and Swagger UI
)
install_error_handlers(app)
app.mount("/playground/", StaticFiles(directory=PLAYGROUND_DIR, html=True), name="playground")
JsonObject = Annotated[dict[str, Any], Body()]


@bentoml.service(name="bg_remover", workers=1, traffic={"timeout": settings.request_timeout_s})
@bentoml.asgi_app(app, path="/")
class BackgroundRemover:
    segmenter = bentoml.depends(Segmenter)

    def __init__(self) -> None:
        self.model_sizes: dict[str, int] = {}
        self.model_answered_at = -MODEL_RECENTLY_S
        folders = [settings.upload_dir, settings.output_dir]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        start_retention(folders, settings.file_ttl_hours * 3600, RETENTION_SWEEP_S)

    @app.post("/remove-background", response_class=Response, summary="Image in, image out",
              dependencies=[budget(limiter, "remove-background")])
    async def remove_background(
        self, request: Request, options: FormOptions, file: ImageFile = None
    ) -> Response:
        started = time.perf_counter()
        parsed, result = await self._process_upload(request, file, options)
        headers = result_headers(result, parsed, _elapsed_ms(started))
        name = download_name(file.filename if file else None, parsed)
        headers["Content-Disposition"] = content_disposition(name)
        return Response(result.data, media_type=result.format.mimetype, headers=headers)

    @app.post("/remove-background-preview", summary="Image in, JSON with base64 out",
              dependencies=[budget(limiter, "remove-background-preview")])
    async def remove_background_preview(
        self, request: Request, options: FormOptions, file: ImageFile = None
    ) -> JSONResponse:
        started = time.perf_counter()
        parsed, result = await self._process_upload(request, file, options)
        return _json_result(result, parsed, started)

    @app.post("/remove-background-base64", summary="JSON with base64 in and out",
              dependencies=[budget(limiter, "remove-background-base64")])
    async def remove_background_base64(self, request: Request, body: JsonObject) -> JSONResponse:
        started = time.perf_counter()
        options = parse_options({key: value for key, value in body.items() if key != "image"})
        result = await self._process(request, decode_base64_image(body.get("image")), options)
        return _json_result(result, options, started)

    @app.post("/remove-background-batch", response_class=Response, summary="Images in, zip out",
              dependencies=[budget(limiter, "remove-background-batch", per_file_field="files")])
    async def remove_background_batch(
        self, request: Request, options: FormOptions, files: ImageFiles = None
    ) -> Response:
        uploads = files or []
        if not uploads:
            raise InvalidImage("No images were sent in the 'files' field")
        if len(uploads) > settings.max_batch_files:
            raise InvalidParameter(f"At most {settings.max_batch_files} files per batch")
        parsed = parse_options(options)
        names = unique_names(download_name(upload.filename, parsed) for upload in uploads)
        entries = await asyncio.gather(*(
            self._batch_entry(request, upload, name, parsed)
            for upload, name in zip(uploads, names, strict=True)
        ))
        return Response(
            batch_archive(entries), media_type="application/zip",
            headers={"Content-Disposition": content_disposition("images_no_bg.zip")},
        )

    @app.post("/read-file", summary="Read an image from UPLOAD_DIR",
              dependencies=[budget(limiter, "read-file")])
    async def read_file(self, request: Request, body: JsonObject) -> JSONResponse:
        path = resolve_upload_path(settings.upload_dir, body.get("path"))
        data = await asyncio.to_thread(read_upload, path, settings.max_content_length)
        image_format = identify_format(data)
        return JSONResponse({
            "success": True,
            "filename": path.name,
            "mimetype": f"image/{image_format.lower()}",
            "size": len(data),
            "image": base64.b64encode(data).decode("ascii"),
        })

    @app.post("/v1.0/removebg", response_class=Response, tags=["remove.bg compatible"],
              summary="remove.bg's API: same parameters, headers and error shape",
              dependencies=[budget(limiter, "remove-background")])
    async def removebg(self, request: Request, sent: RemoveBgRequestFields) -> Response:
        parsed = removebg.parse_removebg(sent.fields)
        data = await self._removebg_image(sent)
        if parsed.archive:
            prepared, mask = await self._infer(data, parsed.options)
            color, alpha = await asyncio.to_thread(shape_layers, prepared, mask, parsed.options)
            body = await asyncio.to_thread(removebg.zip_archive, color, alpha)
            media_type, size = "application/zip", color.size
            bounds = subject_bounds(alpha, Margin())
        else:
            result = await self._process(request, data, parsed.options)
            body, media_type, bounds = result.data, result.format.mimetype, result.foreground
            size = (result.width, result.height)
        headers = removebg.response_headers(size, bounds)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(removebg.json_result(body, bounds), headers=headers)
        return Response(body, media_type=media_type, headers=headers)

    @app.get("/v1.0/account", tags=["remove.bg compatible"],
             summary="remove.bg's account call: the remaining /remove-background budget")
    async def removebg_account(self, request: Request) -> dict[str, Any]:
        status = await limiter.peek("remove-background", request.state.client_key)
        credits = status.remaining if status is not None else removebg.UNLIMITED_CREDITS
        return removebg.account(credits)

    async def _removebg_image(self, sent: RemoveBgFields) -> bytes:
        sources = [name for name in removebg.IMAGE_SOURCES
                   if sent.fields.get(name) or (name == "image_file" and sent.image_file)]
        if len(sources) != 1:
            raise InvalidParameter("Send exactly one of image_file, image_file_b64, image_url")
        if sent.image_file is not None:
            return await sent.image_file.read()
        if sources == ["image_file_b64"]:
            return decode_base64_image(sent.fields["image_file_b64"])
        if not settings.allow_image_url:
            raise InvalidParameter("image_url is disabled on this server (ALLOW_IMAGE_URL)")
        return await fetch_image_url(
            str(sent.fields["image_url"]), max_bytes=settings.max_content_length,
            timeout=settings.image_url_timeout_s,
        )

    @app.get("/playground", include_in_schema=False)
    async def playground(self) -> RedirectResponse:
        return RedirectResponse("/playground/")

    @app.get("/presets", summary="Named option sets")
    async def presets(self) -> dict[str, dict[str, Any]]:
        return {name: preset.as_options() for name, preset in PRESETS.items()}

    @app.get("/health", summary="Health of the app, model, Redis, disk and memory")
    async def health(self) -> JSONResponse:
        redis_ok, redis_detail = await limiter.check_backend()
        checks = {
            "app": health.Check(True, "serving"),
            "model": await self._model_check(),
            "redis": health.Check(redis_ok, redis_detail,
                                  critical=not settings.rate_limit_fail_open),
            "disk_space": health.disk_space(
                [settings.upload_dir, settings.output_dir], settings.disk_min_free_mb
            ),
            "memory": health.memory(settings.memory_max_percent),
        }
        body, status = health.report(checks)
        return JSONResponse(body, status_code=status)

    async def _model_check(self) -> health.Check:
        since = time.monotonic() - self.model_answered_at
        if since < MODEL_RECENTLY_S:
            return health.Check(True, f"{settings.model} answered {since:.0f} s ago")
        try:
            tag = await asyncio.wait_for(self._call_model(self.segmenter.to_async.loaded()),
                                         HEALTH_TIMEOUT_S)
        except Exception as exc:  # any failure to answer means the model is not serving
            return health.Check(False, f"model service not answering: {type(exc).__name__}")
        return health.Check(True, f"{tag} loaded")

    async def _batch_entry(self, request: Request, upload: UploadFile, name: str,
                           options: Options) -> BatchEntry:
        data = await upload.read()
        entry = BatchEntry(upload.filename or "image", name, len(data))
        try:
            result = await self._process(request, data, options)
        except ServiceError as error:
            entry.error = error
        else:
            entry.data, entry.mimetype = result.data, result.format.mimetype
        return entry

    async def _process_upload(
        self, request: Request, file: UploadFile | None, raw: dict[str, Any]
    ) -> tuple[Options, Result]:
        options = parse_options(raw)
        if file is None:
            raise InvalidImage("No image was sent in the 'file' field")
        return options, await self._process(request, await file.read(), options)

    async def _infer(self, data: bytes, options: Options) -> tuple[PreparedImage, np.ndarray]:
        """Decode and run the model: the photo as prepared, and its mask at model size."""
        model_size = await self._model_size(options.model)
        prepared = await asyncio.to_thread(
            prepare, data, options, max_pixels=settings.max_image_pixels, model_size=model_size
        )
        started = time.perf_counter()
        mask = await self._segment(prepared.model_input[np.newaxis], options.model)
        prepared.timings_ms["inference"] = round(_elapsed_ms(started), 1)
        return prepared, mask[0]

    async def _process(self, request: Request, data: bytes, options: Options) -> Result:
        prepared, mask = await self._infer(data, options)
        result = await asyncio.to_thread(finish, prepared, mask, options)
        _observe(request, result)
        if settings.save_outputs:
            await asyncio.to_thread(self._save, request, result)
        return result

    def _save(self, request: Request, result: Result) -> None:
        name = f"{request.state.request_id}-{time.time_ns()}.{result.format.extension}"
        (settings.output_dir / name).write_bytes(result.data)

    async def _model_size(self, name: str | None) -> int:
        if name is None or name == settings.model:
            return get_spec(settings.model).input_size
        if name not in self.model_sizes:
            self.model_sizes = await self._call_model(self.segmenter.to_async.models())
        if name not in self.model_sizes:
            raise InvalidParameter(f"Model '{name}' is not in the model store")
        return self.model_sizes[name]

    async def _segment(self, batch: np.ndarray, name: str | None) -> np.ndarray:
        if name is None or name == settings.model:
            return await self._call_model(self.segmenter.to_async.segment(batch))
        return await self._call_model(self.segmenter.to_async.segment_with(name, batch))

    async def _call_model(self, call: Awaitable[Any]) -> Any:
        try:
            answer = await call
        except bentoml.exceptions.BentoMLException as exc:
            if exc.error_code == 503:
                raise Overloaded(
                    "The model queue is full", headers={"Retry-After": MODEL_CALL_RETRY_AFTER}
                ) from None
            raise Unavailable(f"The model service failed: {exc}") from None
        self.model_answered_at = time.monotonic()
        return answer



def _observe(request: Request, result: Result) -> None:
    """Metrics and log fields of one produced image (a batch logs its last one)."""
    fmt = result.format.value
    OUTPUT_BYTES.labels(format=fmt).observe(result.size)
    COMPRESSION_RATIO.labels(format=fmt).observe(1 - result.size / result.original_size)
    request_log(request.scope).update({
        "input_bytes": result.original_size, "output_bytes": result.size,
        "compression_ratio": result.compression_ratio, "format": fmt, **result.timings_ms,
    })


def _json_result(result: Result, options: Options, started: float) -> JSONResponse:
    headers = result_headers(result, options, _elapsed_ms(started))
    return JSONResponse(result_json(result, options), headers=headers)


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# Outermost first. CORS answers preflights before any key is asked for; identity comes before
# the body is read; the body limit before the concurrency slot is taken.
if settings.cors_origins:
    BackgroundRemover.add_asgi_middleware(
        CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
        allow_headers=["X-API-Key", "Content-Type"],
        expose_headers=["Content-Disposition", "X-Original-Size", "X-Optimized-Size",
                        "X-Optimization-Used", "X-Image-Width", "X-Image-Height",
                        "X-Processing-Time-Ms", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                        "X-RateLimit-Reset", "Retry-After", "X-Request-ID"],
    )
BackgroundRemover.add_asgi_middleware(ResponseHeaders)
BackgroundRemover.add_asgi_middleware(JsonErrors)
BackgroundRemover.add_asgi_middleware(RequestObserver, endpoints=ROUTES)
BackgroundRemover.add_asgi_middleware(
    ClientIdentity, api_keys=settings.api_keys, trusted_proxies=settings.trusted_proxies,
    open_paths=OPEN_ROUTES, open_prefixes=OPEN_PREFIXES,
)
BackgroundRemover.add_asgi_middleware(MetricsAccess, allow=settings.metrics_allow)
BackgroundRemover.add_asgi_middleware(BodySizeLimit, max_bytes=settings.max_content_length)
BackgroundRemover.add_asgi_middleware(
    ConcurrencyLimit, limit=settings.max_concurrency, paths=PROCESSING_ROUTES
)
