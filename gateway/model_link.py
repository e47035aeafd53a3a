"""The API service's link to the model service when the two run apart (a model pool).

BentoML reaches a dependency at the address its runner map gives: a Unix socket that
`bentoml serve` sets up inside one pod, or the URL passed with `--depends segmenter=<url>` (or
`BENTOML_SERVE_DEPENDS`) to an API started on its own (`--service-name bg_remover`). Two of its
defaults do not suit a pool behind a Kubernetes Service, and are changed here:

- Without an address BentoML silently builds the model service inside the API process. Here the
  API refuses to start instead, and with a URL it waits for that URL to answer as the model
  service, failing with a clear message when it does not.
- Its client renews its connection every `max_age` seconds (new connections are what spread
  the load over new model pods), but closes the old one at once, failing the calls still
  running on it. `RecycledSessions` closes it only after the longest call can have ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import httpx
from _bentoml_impl.client.proxy2 import SessionManager  # type: ignore[import-untyped]

log = logging.getLogger("bg_remover.model_link")
REMOTE_SCHEMES = ("http://", "https://", "tcp://")
POLL_S = 0.5


class ModelServiceMissing(RuntimeError):
    """The model service has no address, or its address does not answer as one."""


def require_model_service(
    name: str, url: str | None, wait_s: float, in_process_allowed: bool = False
) -> None:
    """Refuse to start without a model service to call: `url` is where the runner map sends
    calls for the service called `name` (None: BentoML would run it in this process)."""
    if url is None:
        if in_process_allowed:
            log.warning("the model service runs inside the API process (development mode)")
            return
        raise ModelServiceMissing(
            f"No address for the model service {name!r}: this API service was started on its "
            f"own (--service-name) without `--depends {name}=http://<host>:<port>` (or "
            f"BENTOML_SERVE_DEPENDS={name}=http://<host>:<port>). It will not run the model in "
            "its own process; start it with the model service's URL, or run `bentoml serve` "
            "for both services in one process tree."
        )
    if url.startswith(REMOTE_SCHEMES):
        wait_for_model_service(name, url.replace("tcp://", "http://", 1), wait_s)


def wait_for_model_service(name: str, url: str, wait_s: float) -> str:
    """Wait up to `wait_s` for `url` to be ready, then check that it is the model service (it
    answers `loaded` with the served model's tag, which it returns)."""
    deadline = time.monotonic() + wait_s
    last_error = "no answer"
    with httpx.Client(base_url=url, timeout=min(5.0, max(wait_s, 0.5))) as client:
        while True:
            try:
                ready = client.get("/readyz").status_code
                if ready == 200:
                    return _loaded_model(client, name, url)
                if ready != 503:  # a BentoML service answers 503 until it is ready
                    raise _not_the_model_service(name, url, f"GET /readyz: {ready}")
                last_error = "not ready yet (/readyz: 503)"
            except httpx.HTTPError as error:
                last_error = f"{type(error).__name__}: {error}"
            if time.monotonic() >= deadline:
                raise ModelServiceMissing(
                    f"The model service {name!r} at {url} did not answer within {wait_s:g} s "
                    f"({last_error}). Check the URL given with --depends / "
                    "BENTOML_SERVE_DEPENDS, and that the model service runs."
                )
            time.sleep(POLL_S)


def _loaded_model(client: httpx.Client, name: str, url: str) -> str:
    answer = client.post("/loaded", json={})
    if answer.status_code != 200:
        raise _not_the_model_service(name, url, f"POST /loaded: {answer.status_code}")
    model = answer.text.strip()
    log.info("model service %s at %s serves %s", name, url, model)
    return model


def _not_the_model_service(name: str, url: str, answer: str) -> ModelServiceMissing:
    return ModelServiceMissing(
        f"{url} answers, but not as the model service {name!r} ({answer}). Check the URL "
        "given with --depends / BENTOML_SERVE_DEPENDS."
    )


class RecycledSessions(SessionManager):
    """BentoML's session manager, retiring a session without failing the calls still on it:
    the retired session is closed once the longest call may have ended (the client timeout);
    meanwhile it only holds idle keep-alive connections, which aiohttp drops after 15 s."""

    _closing: set[asyncio.Task[None]]
    _session: aiohttp.ClientSession | None

    async def get_session(self) -> aiohttp.ClientSession:
        if self._session is not None and self._should_refresh():
            retired, self._session = self._session, None
            closing = asyncio.get_running_loop().create_task(self._close_later(retired))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        return await super().get_session()

    async def close(self) -> None:
        """At shutdown: retired sessions are closed now too."""
        for closing in list(self._closing):
            closing.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)
        await super().close()

    async def _close_later(self, session: aiohttp.ClientSession) -> None:
        try:
            await asyncio.sleep(self._timeout.total or 0)
        finally:
            await session.close()


def recycle_connections(client: Any) -> None:
    """Make a BentoML client (a dependency's `to_async`) renew its connection gracefully."""
    manager = client._session_manager
    manager.__class__ = RecycledSessions
    manager._closing = set()
