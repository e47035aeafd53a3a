"""bg_remover_client.api: form fields, the upload, and the retry rules (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import httpx
import pytest

from bg_remover_client.api import (
    Gate,
    Options,
    RequestFailed,
    Result,
    RetryPolicy,
    Uploader,
    describe_error,
    retry_after_seconds,
)

Reply = httpx.Response | Exception
BAD_QUALITY = {
    "error": "Invalid optimization parameters",
    "code": "invalid_parameter",
    "solution": "Please check format, quality, and dimension values",
    "details": "Quality must be between 10-100",
}
RATE_LIMITED = {"error": "Rate limit exceeded", "code": "rate_limited", "details": "3 per 1 hour"}


class FakeTime:
    """A clock that only moves when the code under test sleeps: waits are recorded, not spent."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Server:
    """Answers requests from a script of responses (or exceptions to raise), recording them."""

    def __init__(self, replies: Iterable[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply


def ok(content: bytes = b"RIFF-webp", name: str = "cat_no_bg.webp") -> httpx.Response:
    return httpx.Response(
        200,
        content=content,
        headers={
            "content-type": "image/webp",
            "content-disposition": f'attachment; filename="{name}"',
        },
    )


def error(status: int, body: dict[str, str], **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def run(
    server: Server,
    *,
    options: Options | None = None,
    retries: int = 5,
    max_wait: float = 300,
    fake: FakeTime | None = None,
    notes: list[str] | None = None,
) -> Result:
    fake = fake or FakeTime()
    return asyncio.run(
        upload(
            server,
            options or Options(),
            RetryPolicy(retries, max_wait),
            fake,
            notes if notes is not None else [],
        )
    )


async def upload(
    server: Server, options: Options, policy: RetryPolicy, fake: FakeTime, notes: list[str]
) -> Result:
    transport = httpx.MockTransport(server)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        uploader = Uploader(
            client, options, policy, sleep=fake.sleep, notify=notes.append, gate=Gate(fake.clock)
        )
        return await uploader.remove_background("cat.jpg", b"jpeg-bytes")


# --- options ---------------------------------------------------------------------------------


def test_defaults_send_no_option_fields() -> None:
    assert Options().form_fields() == {}
    assert Options().file_parts() == {}


def test_every_option_maps_to_its_form_field() -> None:
    options = Options(
        format="webp",
        quality=70,
        max_width=800,
        max_height=600,
        preset="web",
        bg_color="#ffffff",
        crop=True,
        crop_margin="5%",
        only_mask=True,
        model="u2netp",
        scale="90%",
        position="50% 100%",
        canvas="1000x1000",
        roi="0 0 50% 100%",
        shadow="drop",
        shadow_opacity="35",
        edges="decontaminate",
        bg_image=("beach.jpg", b"jpeg"),
    )
    assert options.form_fields() == {
        "format": "WEBP",
        "quality": "70",
        "max_width": "800",
        "max_height": "600",
        "preset": "web",
        "bg_color": "#ffffff",
        "crop": "true",
        "crop_margin": "5%",
        "only_mask": "true",
        "model": "u2netp",
        "scale": "90%",
        "position": "50% 100%",
        "canvas": "1000x1000",
        "roi": "0 0 50% 100%",
        "shadow": "drop",
        "shadow_opacity": "35",
        "edges": "decontaminate",
    }
    assert options.file_parts() == {"bg_image": ("beach.jpg", b"jpeg")}


def test_upload_is_multipart_with_the_file_and_the_options() -> None:
    server = Server([ok()])
    result = run(server, options=Options(format="webp", crop=True))
    request = server.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/remove-background"
    assert request.headers["content-type"].startswith("multipart/form-data")
    body = request.content
    assert b'name="file"; filename="cat.jpg"' in body and b"jpeg-bytes" in body
    assert b'name="format"\r\n\r\nWEBP' in body
    assert b'name="crop"\r\n\r\ntrue' in body
    assert result == Result(b"RIFF-webp", 'attachment; filename="cat_no_bg.webp"')


def test_the_background_image_is_a_file_part_of_every_upload() -> None:
    server = Server([ok()])
    options = Options(canvas="640x480", bg_image=("beach.png", b"png-bytes"))
    run(server, options=options)
    run(server, options=options)
    for request in server.requests:
        body = request.content
        assert b'name="file"; filename="cat.jpg"' in body and b"jpeg-bytes" in body
        assert b'name="bg_image"; filename="beach.png"' in body and b"png-bytes" in body
        assert b'name="canvas"\r\n\r\n640x480' in body
    assert "png-bytes" not in repr(options)  # a background's bytes stay out of messages


# --- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_then_success(status: int) -> None:
    fake, notes = FakeTime(), []
    server = Server([error(status, RATE_LIMITED, **{"Retry-After": "1"}), ok()])
    result = run(server, fake=fake, notes=notes)
    assert result.content == b"RIFF-webp"
    assert len(server.requests) == 2
    assert fake.sleeps == [1.0]
    assert len(notes) == 1 and "retry 1/5 in 1 s" in notes[0] and str(status) in notes[0]


def test_retry_after_really_waits() -> None:
    """The same with real time: the second request comes at least 1 s after the first."""
    stamps: list[float] = []
    replies = [error(429, RATE_LIMITED, **{"Retry-After": "1"}), ok()]

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        return replies.pop(0)

    async def go() -> Result:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handler), base_url="http://svc"
        ) as client:
            uploader = Uploader(client, Options(), RetryPolicy(), notify=lambda _: None)
            return await uploader.remove_background("cat.jpg", b"x")

    assert asyncio.run(go()).content == b"RIFF-webp"
    assert stamps[1] - stamps[0] >= 1.0


def test_retry_after_beyond_max_wait_gives_up_at_once() -> None:
    fake = FakeTime()
    server = Server([error(429, RATE_LIMITED, **{"Retry-After": "3599"}), ok()])
    with pytest.raises(RequestFailed) as failure:
        run(server, fake=fake, max_wait=300)
    assert len(server.requests) == 1
    assert fake.sleeps == []
    message = str(failure.value)
    assert "429 rate_limited" in message and "3599 s" in message and "--max-wait 300" in message


def test_a_long_pause_fails_the_other_files_without_sending_them() -> None:
    fake = FakeTime()
    server = Server([error(429, RATE_LIMITED, **{"Retry-After": "3600"})])

    async def two_files() -> list[str]:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(server), base_url="http://svc"
        ) as client:
            uploader = Uploader(
                client,
                Options(),
                RetryPolicy(),
                sleep=fake.sleep,
                notify=lambda _: None,
                gate=Gate(fake.clock),
            )
            reasons = []
            for name in ("a.jpg", "b.jpg"):
                with pytest.raises(RequestFailed) as failure:
                    await uploader.remove_background(name, b"x")
                reasons.append(str(failure.value))
            return reasons

    _first, second = asyncio.run(two_files())
    assert len(server.requests) == 1
    assert "not sent" in second and "3600 s" in second


def test_a_short_pause_is_shared_by_other_files() -> None:
    fake, notes = FakeTime(), []
    server = Server(
        [error(503, {"error": "busy", "code": "overloaded"}, **{"Retry-After": "2"}), ok()]
    )

    async def two_files() -> None:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(server), base_url="http://svc"
        ) as client:
            uploader = Uploader(
                client,
                Options(),
                RetryPolicy(),
                sleep=fake.sleep,
                notify=notes.append,
                gate=Gate(fake.clock),
            )
            uploader.gate.close_for(2, "HTTP 503 overloaded: busy")
            await uploader.remove_background("b.jpg", b"x")

    asyncio.run(two_files())
    assert fake.sleeps[0] == 2
    assert "waiting 2 s as the server asked" in notes[0]


def test_retries_are_capped() -> None:
    fake = FakeTime()
    server = Server([error(429, RATE_LIMITED, **{"Retry-After": "1"})])
    with pytest.raises(RequestFailed, match="gave up after 3 attempts"):
        run(server, fake=fake, retries=2)
    assert len(server.requests) == 3
    assert fake.sleeps == [1.0, 1.0]


def test_retries_zero_means_one_attempt() -> None:
    server = Server(
        [error(503, {"error": "Model not loaded", "code": "unavailable"}, **{"Retry-After": "1"})]
    )
    with pytest.raises(RequestFailed, match=r"503 unavailable.*gave up after 1 attempt\)"):
        run(server, retries=0)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("closed")],
)
def test_connection_errors_back_off_exponentially(exc: Exception) -> None:
    fake, notes = FakeTime(), []
    server = Server([exc, exc, exc, ok()])
    assert run(server, fake=fake, notes=notes).content == b"RIFF-webp"
    assert fake.sleeps == [1.0, 2.0, 4.0]
    assert type(exc).__name__ in notes[0]


def test_gateway_errors_and_429_without_retry_after_back_off() -> None:
    fake = FakeTime()
    server = Server([httpx.Response(502, text="Bad Gateway"), error(429, RATE_LIMITED), ok()])
    run(server, fake=fake)
    assert fake.sleeps == [1.0, 2.0]


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(backoff_base=1, backoff_cap=60)
    assert [policy.backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            BAD_QUALITY,
            "HTTP 400 invalid_parameter: Invalid optimization parameters "
            "(Quality must be between 10-100)",
        ),
        (401, {"error": "Unauthorized", "code": "unauthorized"}, "HTTP 401 unauthorized"),
        (413, {"error": "Payload too large", "code": "payload_too_large"}, "HTTP 413"),
        (415, {"error": "Unsupported media type", "code": "unsupported_media_type"}, "HTTP 415"),
        (500, {"error": "Internal error", "code": "internal"}, "HTTP 500"),
    ],
)
def test_other_errors_are_not_retried(status: int, body: dict[str, str], expected: str) -> None:
    fake = FakeTime()
    server = Server([error(status, body, **{"Retry-After": "1"}), ok()])
    with pytest.raises(RequestFailed) as failure:
        run(server, fake=fake)
    assert len(server.requests) == 1
    assert fake.sleeps == []
    assert str(failure.value).startswith(expected)


# --- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1", 1.0),
        (" 3600 ", 3600.0),
        ("0", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("-5", None),
        ("Wed, 25 Nov 2026 12:01:00 GMT", 60.0),
        ("Wed, 25 Nov 2026 11:00:00 GMT", 0.0),
    ],
)
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(value, now=now) == seconds


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(502, text="<html>Bad Gateway</html>"), "HTTP 502 Bad Gateway: <html>"),
        (httpx.Response(404), "HTTP 404 Not Found"),
        (httpx.Response(400, json=["not", "an", "object"]), "HTTP 400 Bad Request: "),
        (
            httpx.Response(
                400, json={"error": "Bad image", "code": "invalid_image", "details": "truncated"}
            ),
            "HTTP 400 invalid_image: Bad image (truncated)",
        ),
    ],
)
def test_describe_error(response: httpx.Response, expected: str) -> None:
    assert describe_error(response).startswith(expected)


def test_gate_keeps_the_longest_pause() -> None:
    now = [0.0]
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    gate = Gate(clock)
    gate.close_for(10, "long")
    gate.close_for(2, "short")
    assert (gate.remaining(), gate.reason) == (10, "long")
    now[0] = 11
    assert gate.remaining() == 0
