"""BentoML wiring: the model service, the API service, and the HTTP edge mounted on it.

    Segmenter           holds the ONNX model; a batchable API from uint8 photos to uint8 masks
                        and their foreground coverage
    BackgroundRemover   the public HTTP API: `gateway/` routes and middleware over the
                        `application/` request flow, which reaches Segmenter through
                        `bentoml.depends`

Everything else lives in framework-free packages (see the README's Architecture section).
"""

from __future__ import annotations

import asyncio
import os
import platform
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import bentoml
import numpy as np
from bentoml._internal.configuration.containers import BentoMLContainer

from application import Application
from contract import headers
from contract.errors import SHED_MODEL_QUEUE, Overloaded, Unavailable
from gateway.api import create_api, inner_middleware, outer_middleware, wrapped
from gateway.header_timeout import install_header_timeout
from gateway.model_link import recycle_connections, require_model_service
from operations.logs import configure_logging
from operations.metrics import INFERENCE_BATCH_SIZE, INFERENCE_DURATION, report_build
from operations.resources import return_freed_memory_promptly
from segmentation import SegmentationSession, get_spec
from segmentation.catalog import STORE_LABELS, STORE_MODEL_FILE
from settings import get_settings

T = TypeVar("T")
settings = get_settings()
# uvicorn (started by BentoML) trusts X-Forwarded-For from 127.0.0.1 unless told otherwise;
# who the client is must be decided by TRUSTED_PROXIES alone (gateway/identity.py).
os.environ["FORWARDED_ALLOW_IPS"] = ""
# uvicorn (started by BentoML) puts no deadline on request headers; this gives it one.
install_header_timeout(settings.header_timeout_s)
configure_logging(settings.log_level, settings.log_format, settings.log_file)
SEGMENTER = "segmenter"  # the model service's name: --depends and the runner map use it
MODEL_QUEUE_RETRY_AFTER_S = "5"


def report_build_info(service: bentoml.Service) -> None:
    bento = service.bento
    version = bento.tag.version if bento is not None and bento.tag.version else "source"
    report_build(version, settings.model, bentoml.__version__, platform.python_version())


def open_session(stored: bentoml.Model) -> SegmentationSession:
    return SegmentationSession(
        Path(stored.path_of(STORE_MODEL_FILE)),
        get_spec(stored.tag.name),
        threads=settings.model_threads,
        run_batch=settings.inference_run_batch,
        spinning=settings.model_thread_spinning,
        parallel_runs=settings.model_parallel_runs,
    )


@bentoml.service(
    name=SEGMENTER,
    workers=settings.model_workers,
    traffic={"timeout": settings.request_timeout_s},
    # BentoML renews this connection every 100 calls by default, dropping those in flight; it
    # is renewed by age only, and gracefully (gateway/model_link.py), for a model pool.
    runner_connection={
        "max_requests": 10**9,
        "max_age": settings.model_connection_max_age_s or 1e7,
    },
)
class Segmenter:
    model = bentoml.models.BentoModel(settings.model)

    def __init__(self) -> None:
        self.default = open_session(self.model)
        self.others: dict[str, SegmentationSession] = {}
        report_build_info(Segmenter)

    @bentoml.api(
        batchable=True,
        max_batch_size=settings.max_batch_size,
        max_latency_ms=settings.max_latency_ms,
    )
    def segment(self, images: np.ndarray) -> np.ndarray:
        """N x S x S x 3 uint8 photos -> N records (an S x S uint8 mask and the foreground
        coverage, `segmentation.foreground`) with the served model."""
        return timed(self.model.tag.name, self.default, images)

    @bentoml.api
    def segment_with(self, model_name: str, images: np.ndarray) -> np.ndarray:
        """The same with another model from the store, loaded on first use (not batched)."""
        if model_name not in self.others:
            self.others[model_name] = open_session(bentoml.models.get(model_name))
        return timed(model_name, self.others[model_name], images)

    @bentoml.api
    def models(self) -> dict[str, int]:
        """Models this service can run: name -> square input size."""
        stored = [
            model.tag.name
            for model in bentoml.models.list()
            if STORE_LABELS.items() <= model.info.labels.items()
        ]
        return {name: get_spec(name).input_size for name in {*stored, settings.model}}

    @bentoml.api
    def loaded(self) -> str:
        """The served model's tag: answering at all proves the model is loaded."""
        return str(self.model.tag)


def timed(model: str, session: SegmentationSession, images: np.ndarray) -> np.ndarray:
    INFERENCE_BATCH_SIZE.observe(len(images))
    started = time.perf_counter()
    records = session.segment(images)
    INFERENCE_DURATION.labels(model=model).observe(time.perf_counter() - started)
    return records


class ModelServiceClient:
    """The application's `ModelService` over BentoML's client for Segmenter: BentoML's own
    failures become the contract's errors (its 503 for an overfull queue: `overloaded`)."""

    # `segmenter` is BentoML's client for Segmenter (its calls are on `to_async`), not an
    # instance of the class, whatever `bentoml.depends` declares.
    def __init__(self, segmenter: Any) -> None:
        self.segmenter = segmenter

    async def segment(self, batch: np.ndarray, model: str | None) -> np.ndarray:
        if model is None:
            return await self._call(self.segmenter.to_async.segment(batch))
        return await self._call(self.segmenter.to_async.segment_with(model, batch))

    async def available(self) -> dict[str, int]:
        return await self._call(self.segmenter.to_async.models())

    async def ping(self) -> str:
        return await self._call(self.segmenter.to_async.loaded())

    @staticmethod
    async def _call(call: Awaitable[T]) -> T:
        try:
            return await call
        except bentoml.exceptions.BentoMLException as exc:
            if exc.error_code == 503:
                raise Overloaded(
                    "The model queue is full",
                    headers={headers.RETRY_AFTER: MODEL_QUEUE_RETRY_AFTER_S},
                    shed_reason=SHED_MODEL_QUEUE,
                ) from None
            raise Unavailable(f"The model service failed: {exc}") from None
        except Exception as exc:  # the hop itself failed: the model service is stopping or gone
            raise Unavailable(
                f"The model service did not answer: {type(exc).__name__}",
                headers={headers.RETRY_AFTER: MODEL_QUEUE_RETRY_AFTER_S},
            ) from None


api = create_api()


class EdgeService(bentoml.Service):
    """A BentoML service whose ASGI app, BentoML's middleware included, is wrapped in the
    service's outer middleware (gateway/api.py): BentoML's own answers (its 504 after the
    request timeout) get the contract's JSON, headers and metrics, and BentoML's traffic
    metrics see bounded path labels."""

    __slots__ = ()

    def to_asgi(self, is_main: bool = True) -> object:
        return wrapped(super().to_asgi(is_main), outer_middleware(settings))


@bentoml.service(
    name="bg_remover",
    workers=1,
    traffic={"timeout": settings.request_timeout_s},
    # The service writes one log line per request itself (operations/logs.py); BentoML's
    # access log would print raw paths and decode Content-Type strictly, after the response
    # started (a byte 0xFF broke the answer).
    logging={"access": {"enabled": False}},
)
@bentoml.asgi_app(api, path="/")
class BackgroundRemover:
    segmenter = bentoml.depends(Segmenter)

    def __init__(self) -> None:
        return_freed_memory_promptly()  # resident memory follows the memory admitted to images
        if settings.api_worker_nice:
            os.nice(settings.api_worker_nice)  # the model worker wins the cores when both want them
        model_url = BentoMLContainer.remote_runner_mapping.get().get(SEGMENTER)
        require_model_service(
            SEGMENTER,
            model_url,
            settings.model_service_wait_s,
            in_process_allowed=BentoMLContainer.development_mode.get(),
        )
        if model_url is not None and settings.model_connection_max_age_s:
            recycle_connections(self.segmenter.to_async)
        report_build_info(BackgroundRemover)
        self.application = Application.from_settings(settings, ModelServiceClient(self.segmenter))
        self.application.wiring.start_housekeeping()
        api.state.application = self.application

    @bentoml.on_startup
    async def watch_redis(self) -> None:
        """Runs on the serving event loop, where the Redis clients live."""
        watch = self.application.wiring.watch_redis()
        self.redis_watch = asyncio.get_running_loop().create_task(watch)

    @bentoml.on_shutdown
    async def stop_watching_redis(self) -> None:
        self.redis_watch.cancel()


for middleware_class, options in inner_middleware(settings):
    # mypy keeps a decorated class's own type: BackgroundRemover is a bentoml.Service here.
    BackgroundRemover.add_asgi_middleware(middleware_class, **options)  # type: ignore[attr-defined]
BackgroundRemover.__class__ = EdgeService  # type: ignore[method-assign]
