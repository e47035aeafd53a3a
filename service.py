"""BentoML wiring: the model service, the API service, their routes, and errors to HTTP.

    Segmenter           holds the ONNX model; a batchable API from uint8 photos to uint8 masks
    BackgroundRemover   the public HTTP API (FastAPI routes mounted on BentoML); it decodes,
                        validates, calls Segmenter, optimizes and answers as ../shared/API.md says

Domain logic lives in `optimizer/`, `segmentation/`, `ratelimit/` and `contract/`.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable
from typing import Annotated, Any

import bentoml
import numpy as np
from fastapi import Body, Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from contract.errors import (
    InvalidImage,
    InvalidParameter,
    Overloaded,
    ServiceError,
    Unavailable,
)
from contract.requests import BatchEntry, batch_archive, decode_base64_image, unique_names
from contract.responses import (
    content_disposition,
    download_name,
    result_headers,
    result_json,
)
from contract.uploads import read_upload, resolve_upload_path
from gateway.body_limit import BodySizeLimit
from gateway.responses import error_response
from gateway.security_headers import SecurityHeaders
from optimizer import PRESETS, Options, Result, finish, parse_options, prepare
from optimizer.decode import identify_format
from segmentation import SegmentationSession, get_spec
from segmentation.catalog import STORE_LABELS, STORE_MODEL_FILE
from settings import get_settings

settings = get_settings()
RETRY_AFTER_OVERLOADED = "5"


def open_session(stored: bentoml.Model, threads: int) -> SegmentationSession:
    return SegmentationSession(stored.path_of(STORE_MODEL_FILE), get_spec(stored.tag.name), threads)


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
        self.default = open_session(self.model, settings.model_threads)
        self.others: dict[str, SegmentationSession] = {}

    @bentoml.api(
        batchable=True,
        max_batch_size=settings.max_batch_size,
        max_latency_ms=settings.max_latency_ms,
    )
    def segment(self, images: np.ndarray) -> np.ndarray:
        """N x S x S x 3 uint8 photos -> N x S x S uint8 masks with the served model."""
        return self.default.predict(images)

    @bentoml.api
    def segment_with(self, model_name: str, images: np.ndarray) -> np.ndarray:
        """The same with another model from the store, loaded on first use (not batched)."""
        if model_name not in self.others:
            self.others[model_name] = open_session(
                bentoml.models.get(model_name), settings.model_threads
            )
        return self.others[model_name].predict(images)

    @bentoml.api
    def models(self) -> dict[str, int]:
        """Models this service can run: name -> square input size."""
        stored = [
            model.tag.name for model in bentoml.models.list()
            if STORE_LABELS.items() <= model.info.labels.items()
        ]
        return {name: get_spec(name).input_size for name in {*stored, settings.model}}


app = FastAPI(
    title="Background Remover API",
    summary="Cut the subject out of a photo and get it back optimized for the web.",
    docs_url=None, redoc_url=None, openapi_url=None,  # BentoML serves /docs.json and Swagger UI
)

ImageFile = Annotated[UploadFile | None, File(description="The image (JPEG, PNG, WEBP, ...)")]
ImageFiles = Annotated[list[UploadFile] | None, File(description="Several images")]


async def form_options(
    request: Request,
    format: Annotated[str | None, Form(description="PNG, JPEG (JPG), WEBP or AVIF")] = None,
    quality: Annotated[str | None, Form(description="10-100")] = None,
    max_width: Annotated[str | None, Form(description="100-4000")] = None,
    max_height: Annotated[str | None, Form(description="100-4000")] = None,
    preset: Annotated[str | None, Form(description=", ".join(PRESETS))] = None,
    bg_color: Annotated[str | None, Form(description="#rgb, #rrggbb, #rrggbbaa, name")] = None,
    crop: Annotated[str | None, Form(description="boolean")] = None,
    crop_margin: Annotated[str | None, Form(description="px or N%")] = None,
    only_mask: Annotated[str | None, Form(description="boolean")] = None,
    model: Annotated[str | None, Form(description="a model in the store")] = None,
) -> dict[str, Any]:
    """Every form field but the files; the declared ones document the options in OpenAPI."""
    form = await request.form()
    return {key: value for key, value in form.multi_items() if key not in ("file", "files")}


FormOptions = Annotated[dict[str, Any], Depends(form_options)]
JsonObject = Annotated[dict[str, Any], Body()]


@bentoml.service(name="bg_remover", workers=1, traffic={"timeout": settings.request_timeout_s})
@bentoml.asgi_app(app, path="/")
class BackgroundRemover:
    segmenter = bentoml.depends(Segmenter)

    def __init__(self) -> None:
        self.model_sizes: dict[str, int] = {}
        for folder in (settings.upload_dir, settings.output_dir):
            folder.mkdir(parents=True, exist_ok=True)

    @app.post("/remove-background", response_class=Response, summary="Image in, image out")
    async def remove_background(
        self, request: Request, options: FormOptions, file: ImageFile = None
    ) -> Response:
        started = time.perf_counter()
        parsed, result = await self._process_upload(file, options)
        headers = result_headers(result, parsed, _elapsed_ms(started))
        name = download_name(file.filename if file else None, parsed)
        headers["Content-Disposition"] = content_disposition(name)
        return Response(result.data, media_type=result.format.mimetype, headers=headers)

    @app.post("/remove-background-preview", summary="Image in, JSON with base64 out")
    async def remove_background_preview(
        self, request: Request, options: FormOptions, file: ImageFile = None
    ) -> JSONResponse:
        started = time.perf_counter()
        parsed, result = await self._process_upload(file, options)
        return _json_result(result, parsed, started)

    @app.post("/remove-background-base64", summary="JSON with base64 in and out")
    async def remove_background_base64(self, request: Request, body: JsonObject) -> JSONResponse:
        started = time.perf_counter()
        raw = {key: value for key, value in body.items() if key != "image"}
        options = parse_options(raw)
        result = await self._process(decode_base64_image(body.get("image")), options)
        return _json_result(result, options, started)

    @app.post("/remove-background-batch", response_class=Response, summary="Images in, zip out")
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
            self._batch_entry(upload, name, parsed)
            for upload, name in zip(uploads, names, strict=True)
        ))
        return Response(
            batch_archive(entries), media_type="application/zip",
            headers={"Content-Disposition": content_disposition("images_no_bg.zip")},
        )

    @app.post("/read-file", summary="Read an image from UPLOAD_DIR")
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

    @app.get("/presets", summary="Named option sets")
    async def presets(self) -> dict[str, dict[str, Any]]:
        return {name: preset.as_options() for name, preset in PRESETS.items()}

    async def _batch_entry(self, upload: UploadFile, name: str, options: Options) -> BatchEntry:
        data = await upload.read()
        entry = BatchEntry(upload.filename or "image", name, len(data))
        try:
            result = await self._process(data, options)
        except ServiceError as error:
            entry.error = error
        else:
            entry.data, entry.mimetype = result.data, result.format.mimetype
        return entry

    async def _process_upload(
        self, file: UploadFile | None, raw: dict[str, Any]
    ) -> tuple[Options, Result]:
        options = parse_options(raw)
        if file is None:
            raise InvalidImage("No image was sent in the 'file' field")
        return options, await self._process(await file.read(), options)

    async def _process(self, data: bytes, options: Options) -> Result:
        model_size = await self._model_size(options.model)
        prepared = await asyncio.to_thread(
            prepare, data, options, max_pixels=settings.max_image_pixels, model_size=model_size
        )
        started = time.perf_counter()
        mask = await self._segment(prepared.model_input[np.newaxis], options.model)
        prepared.timings_ms["inference"] = round(_elapsed_ms(started), 1)
        return await asyncio.to_thread(finish, prepared, mask[0], options)

    async def _model_size(self, name: str | None) -> int:
        if name is None or name == settings.model:
            return get_spec(settings.model).input_size
        if name not in self.model_sizes:
            self.model_sizes = await _call_model(self.segmenter.to_async.models())
        if name not in self.model_sizes:
            raise InvalidParameter(f"Model '{name}' is not in the model store")
        return self.model_sizes[name]

    async def _segment(self, batch: np.ndarray, name: str | None) -> np.ndarray:
        if name is None or name == settings.model:
            return await _call_model(self.segmenter.to_async.segment(batch))
        return await _call_model(self.segmenter.to_async.segment_with(name, batch))


async def _call_model(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except bentoml.exceptions.BentoMLException as exc:
        if exc.error_code == 503:
            raise Overloaded(
                "The model queue is full", headers={"Retry-After": RETRY_AFTER_OVERLOADED}
            ) from None
        raise Unavailable(f"The model service failed: {exc}") from None


def _json_result(result: Result, options: Options, started: float) -> JSONResponse:
    headers = result_headers(result, options, _elapsed_ms(started))
    return JSONResponse(result_json(result, options), headers=headers)


@app.exception_handler(ServiceError)
async def _service_error(request: Request, error: ServiceError) -> JSONResponse:
    return error_response(error)


@app.exception_handler(RequestValidationError)
async def _unparseable_request(request: Request, error: RequestValidationError) -> JSONResponse:
    fields = sorted({".".join(map(str, e["loc"][1:])) or "body" for e in error.errors()})
    return error_response(InvalidParameter(f"Malformed request: check {', '.join(fields)}"))


@app.exception_handler(HTTPException)
async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    # FastAPI wraps failures while reading the body (such as our 413) in a 400 HTTPException.
    if isinstance(error.__cause__, ServiceError):
        return error_response(error.__cause__)
    if error.status_code == 400:
        return error_response(InvalidParameter(f"Malformed request body: {error.detail}"))
    return JSONResponse({"error": str(error.detail), "code": "http_error", "solution": "",
                         "details": str(error.detail)}, status_code=error.status_code)


@app.exception_handler(Exception)
async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    return error_response(ServiceError("An unexpected error occurred; it has been logged"))


BackgroundRemover.add_asgi_middleware(BodySizeLimit, max_bytes=settings.max_content_length)
BackgroundRemover.add_asgi_middleware(SecurityHeaders)


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
