"""A deadline for every request's head (the request line and headers).

uvicorn closes kept-alive connections that stay idle (5 s under BentoML), but sets no deadline
on a request's head: a connection that sends nothing, or one header line every few seconds,
stays open for as long as its client likes, and enough of them hold every connection the
server can take. `with_header_timeout` gives uvicorn's HTTP protocol class that deadline: from
a connection's opening, or from the first byte of its next request, until the head is
complete. Past it the client gets a 408 `request_timeout` and the connection is closed. The
body has its own deadline (`gateway.body_guard`).
"""

from __future__ import annotations

import asyncio

import uvicorn.protocols.http.auto as auto_protocol

from contract.errors import RequestTimeout
from contract.headers import SECURITY_HEADERS
from gateway.errors import SafeJSONResponse


def timeout_response(seconds: float) -> bytes:
    """The raw HTTP/1.1 answer to a head that did not arrive in time."""
    error = RequestTimeout(f"The request headers did not arrive within {seconds:g} s")
    body = SafeJSONResponse(error.body()).body
    head = {
        "content-type": "application/json",
        "content-length": str(len(body)),
        "connection": "close",
        **SECURITY_HEADERS,
    }
    lines = "".join(f"{name}: {value}\r\n" for name, value in head.items())
    return f"HTTP/1.1 408 Request Timeout\r\n{lines}\r\n".encode("latin-1") + body


def with_header_timeout(protocol: type, seconds: float) -> type:
    """uvicorn's HTTP protocol class (h11 or httptools) with a deadline on request heads."""
    answer = timeout_response(seconds)

    class HeaderDeadline(protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._awaiting_head() and self._head_timer is None:
                self._arm()
            cycle = self.cycle
            super().data_received(data)
            if self.cycle is not cycle:  # a request's head is complete
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _awaiting_head(self) -> bool:
            return self.cycle is None or bool(self.cycle.response_complete)

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(seconds, self._head_too_late)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_too_late(self) -> None:
            self._head_timer = None
            if self._awaiting_head() and not self.transport.is_closing():
                self.transport.write(answer)
                self.transport.close()

    HeaderDeadline.__name__ = f"{protocol.__name__}WithHeaderTimeout"
    return HeaderDeadline


def install_header_timeout(seconds: float) -> None:
    """Give the protocol uvicorn picks by default (`http="auto"`) the deadline: for servers
    whose uvicorn configuration is not ours to write (BentoML's workers)."""
    auto_protocol.AutoHTTPProtocol = with_header_timeout(auto_protocol.AutoHTTPProtocol, seconds)
