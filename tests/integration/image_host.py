"""A web server on loopback serving test images, for the `image_url` and `bg_image_url`
parameters, and the one opening of the service's address policy that lets it be reached.

The service fetches client URLs only from public addresses (`application/image_url.py`, tested
on its own in tests/unit/test_image_url.py). Here its fetch resolves the test host name
`images.test` to loopback and accepts that address; everything else about the download (the
real HTTP request, the port list, no redirects, the byte cap, the deadline) is the service's.
"""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import ClassVar

import pytest

import application.image_url
from application.image_url import IPAddress, fetch_image_url
from tests.integration.api_server import InProcessServer

HOST_NAME = "images.test"
LOOPBACK = ipaddress.ip_address("127.0.0.1")


class _Handler(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, tuple[bytes, str]]] = {}

    def do_GET(self) -> None:
        found = self.files.get(self.path)
        if found is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data, media_type = found
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class ImageHost:
    def __init__(self, server: http.server.ThreadingHTTPServer) -> None:
        self.server = server
        self.port = server.server_address[1]

    def add(self, path: str, data: bytes, media_type: str = "image/jpeg") -> str:
        """Serve `data` at `path`; returns its URL as a client would send it."""
        _Handler.files[path] = (data, media_type)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://{HOST_NAME}:{self.port}{path}"


@contextmanager
def serving_images() -> Iterator[ImageHost]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="image-host", daemon=True)
    thread.start()
    try:
        yield ImageHost(server)
    finally:
        server.shutdown()
        server.server_close()
        _Handler.files.clear()


async def _to_loopback(host: str, port: int) -> list[IPAddress]:
    if host != HOST_NAME:
        raise OSError(f"{host} is not the test image host")
    return [LOOPBACK]


@contextmanager
def server_fetching_from(
    host: ImageHost, workdir: Path, env: dict[str, str] | None = None
) -> Iterator[InProcessServer]:
    """The API in this process with ALLOW_IMAGE_URL on, fetching from the test image host (and
    nowhere else), with `env` besides."""
    opened = partial(fetch_image_url, resolver=_to_loopback, allowed=lambda address: True)
    env = {"ALLOW_IMAGE_URL": "true", "IMAGE_URL_PORTS": str(host.port), **(env or {})}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(application.image_url, "fetch_image_url", opened)
        with InProcessServer(workdir, env=env) as running:
            yield running
