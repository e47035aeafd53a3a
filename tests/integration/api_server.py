"""The whole HTTP API served in this test process: the real ASGI app (routes, middleware,
application layer) on uvicorn, with the real u2netp model in an in-process onnxruntime session
instead of BentoML's model service. Same interface as `tests.e2e.server.BentoServer`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from functools import cache
from pathlib import Path

import uvicorn
from prometheus_client import REGISTRY
from uvicorn.protocols.http.h11_impl import H11Protocol

from application import Application, InProcessModels
from gateway.api import asgi_app
from gateway.header_timeout import with_header_timeout
from operations.resources import return_freed_memory_promptly
from segmentation import SegmentationSession, get_spec
from settings import Settings
from tests.serving import GENEROUS_LIMITS, free_port

MODEL = "u2netp"
READY_TIMEOUT_S = 30


@cache
def shared_models() -> InProcessModels:
    """One onnxruntime session for every in-process server of the test run."""
    import bentoml

    stored = bentoml.models.get(MODEL)
    session = SegmentationSession(Path(stored.path_of("model.onnx")), get_spec(MODEL), threads=2)
    return InProcessModels({MODEL: session}, MODEL)


def settings_from(env: dict[str, str]) -> Settings:
    """Settings as the service would read them from these environment variables."""
    fields = Settings.model_fields
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        **{name.lower(): value for name, value in env.items() if name.lower() in fields},
    )


class InProcessServer:
    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "UPLOAD_DIR": str(workdir / "uploads"),
            "OUTPUT_DIR": str(workdir / "outputs"),
            **GENEROUS_LIMITS,
            **(env or {}),
        }
        self.settings = settings_from(self.env)
        return_freed_memory_promptly()  # as the API worker does (service.py)
        self.application = Application.from_settings(self.settings, shared_models())
        # As BentoML runs uvicorn: proxy headers are never trusted by uvicorn itself, and
        # request heads have a deadline (service.py installs it in BentoML's uvicorn).
        config = uvicorn.Config(
            asgi_app(self.application, self.settings),
            host="127.0.0.1",
            port=self.port,
            proxy_headers=False,
            lifespan="off",
            log_config=None,
            log_level="warning",
            server_header=False,
            http=with_header_timeout(H11Protocol, self.settings.header_timeout_s),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name=f"api-{self.port}", daemon=True)
        self.housekeeping: threading.Event | None = None

    def start(self) -> InProcessServer:
        self.housekeeping = self.application.wiring.start_housekeeping()
        self.thread.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"in-process server on {self.port} did not start")
            time.sleep(0.02)
        return self

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        finally:  # the Redis clients of the limiter and the cache belong to this loop
            await self.application.wiring.aclose()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        if self.housekeeping is not None:
            self.housekeeping.set()

    def log(self) -> str:
        return ""

    def admitted_bytes(self) -> float:
        """`bg_remover_admitted_memory_bytes`: the server's metrics live in this process."""
        return REGISTRY.get_sample_value("bg_remover_admitted_memory_bytes") or 0.0

    def requests_received(self) -> int:
        """Requests whose head has arrived and which the app is handling or has handled."""
        return self.server.server_state.total_requests

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
