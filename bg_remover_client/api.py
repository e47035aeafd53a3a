"""The HTTP side: options as form fields (and a background image as a file part), one upload
to `POST /remove-background`, retries.

Retry rules (docs/api.md, "Errors" and "Headers"):
- 429 and 503 carry `Retry-After` (integer seconds): wait that long, unless it is longer than
  `max_wait` - a used-up hourly budget asks for up to an hour - then give up on the file.
  The wait is shared: every worker pauses, since the server would refuse them all anyway.
- connection errors, timeouts, 502/504 (and 429/503 without `Retry-After`): exponential
  backoff.
- any other 4xx/5xx is final; the contract's `error`/`details` become the reason.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

ENDPOINT = "/remove-background"
PRESETS_ENDPOINT = "/presets"
RETRY_AFTER_STATUSES = frozenset({429, 503})
BACKOFF_STATUSES = frozenset({502, 504})  # proxies in front of the service, restarting pods
NOTICEABLE_WAIT_S = 1.0

Sleep = Callable[[float], Awaitable[None]]
Notify = Callable[[str], None]
FilePart = tuple[str, bytes]  # a multipart file part: (file name, content)


async def preset_format(client: httpx.AsyncClient, preset: str) -> str | None:
    """The output format of `preset` as the server's `GET /presets` says; None when the server
    does not know it or cannot be asked (the uploads will then say why)."""
    try:
        response = await client.get(PRESETS_ENDPOINT)
        presets = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return None
    options = presets.get(preset.lower()) if isinstance(presets, dict) else None
    fmt = options.get("format") if isinstance(options, dict) else None
    return fmt if isinstance(fmt, str) else None


@dataclass(frozen=True)
class Options:
    """Processing options; None/False means "not sent", so the server's defaults apply."""

    format: str | None = None
    quality: int | None = None
    max_width: int | None = None
    max_height: int | None = None
    preset: str | None = None
    bg_color: str | None = None
    crop: bool = False
    crop_margin: str | None = None
    only_mask: bool = False
    model: str | None = None
    # Composition (docs/api.md, "Composition"): sent as given, the server checks the grammar.
    scale: str | None = None
    position: str | None = None
    canvas: str | None = None
    roi: str | None = None
    shadow: str | None = None
    shadow_opacity: str | None = None
    edges: str | None = None
    bg_image: FilePart | None = field(default=None, repr=False)  # one for every input

    def form_fields(self) -> dict[str, str]:
        """Only the options given: a request with none is a defaults-only request."""
        fields = {
            "format": self.format.upper() if self.format else None,
            "quality": self.quality,
            "max_width": self.max_width,
            "max_height": self.max_height,
            "preset": self.preset,
            "bg_color": self.bg_color,
            "crop": "true" if self.crop else None,
            "crop_margin": self.crop_margin,
            "only_mask": "true" if self.only_mask else None,
            "model": self.model,
            "scale": self.scale,
            "position": self.position,
            "canvas": self.canvas,
            "roi": self.roi,
            "shadow": self.shadow,
            "shadow_opacity": self.shadow_opacity,
            "edges": self.edges,
        }
        return {name: str(value) for name, value in fields.items() if value is not None}

    def file_parts(self) -> dict[str, FilePart]:
        """The files sent beside the input: the background image, when one was given."""
        return {"bg_image": self.bg_image} if self.bg_image is not None else {}


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 5  # retries after the first attempt
    max_wait: float = 300.0  # longest Retry-After we accept before giving up on a file
    backoff_base: float = 1.0
    backoff_cap: float = 60.0

    def backoff(self, retry: int) -> float:
        """Wait before retry number `retry` (1, 2, ...): 1, 2, 4, 8... seconds, capped."""
        return min(self.backoff_cap, self.backoff_base * 2 ** (retry - 1))


@dataclass(frozen=True)
class Result:
    content: bytes
    content_disposition: str | None  # files.py turns it into the output's name


@dataclass(frozen=True)
class Retryable:
    """A failed attempt worth repeating: why, and how long the server asked us to wait."""

    reason: str
    wait: float | None = None  # None: use exponential backoff


class RequestFailed(Exception):
    """The file could not be processed; `str()` is the reason for the summary."""


class Gate:
    """A pause shared by all workers: after a 429/503, nobody sends before `Retry-After`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = 0.0
        self.reason = ""

    def close_for(self, seconds: float, reason: str) -> None:
        until = self._clock() + seconds
        if until > self._until:
            self._until, self.reason = until, reason

    def remaining(self) -> float:
        return max(0.0, self._until - self._clock())


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: the contract sends an integer; RFC 9110 also allows a date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def describe_error(response: httpx.Response) -> str:
    """`HTTP 400 invalid_parameter: Invalid optimization parameters (Quality must be ...)`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()[:200]
        return f"HTTP {response.status_code} {response.reason_phrase}" + (
            f": {text}" if text else ""
        )
    code = f" {body['code']}" if body.get("code") else ""
    message = body.get("error") or response.reason_phrase
    details = f" ({body['details']})" if body.get("details") else ""
    return f"HTTP {response.status_code}{code}: {message}{details}"


class Uploader:
    """Sends one file at a time per call; safe to share between concurrent workers."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        options: Options,
        policy: RetryPolicy,
        *,
        sleep: Sleep = asyncio.sleep,
        notify: Notify = print,
        gate: Gate | None = None,
    ) -> None:
        self.client = client
        self.fields = options.form_fields()
        self.file_parts = options.file_parts()
        self.policy = policy
        self.sleep = sleep
        self.notify = notify
        self.gate = gate or Gate()

    async def remove_background(self, name: str, data: bytes, label: str | None = None) -> Result:
        """POST the file as `name`, retrying as the module docstring says; raise RequestFailed.

        `label` names the file in the retry messages (default: `name`)."""
        label = label or name
        retry = 0
        while True:
            await self._respect_gate(label)
            outcome = await self._attempt(name, data)
            if isinstance(outcome, Result):
                return outcome
            if retry >= self.policy.retries:
                tries = "1 attempt" if retry == 0 else f"{retry + 1} attempts"
                raise RequestFailed(f"{outcome.reason} (gave up after {tries})")
            retry += 1
            wait = self.policy.backoff(retry) if outcome.wait is None else outcome.wait
            self.notify(
                f"{label}: {outcome.reason}; retry {retry}/{self.policy.retries} in {wait:.0f} s"
            )
            await self.sleep(wait)

    async def _attempt(self, name: str, data: bytes) -> Result | Retryable:
        """One request. Raises RequestFailed when retrying cannot help."""
        try:
            response = await self.client.post(
                ENDPOINT, files={"file": (name, data), **self.file_parts}, data=self.fields
            )
        except httpx.TransportError as exc:
            detail = f": {exc}" if str(exc) else ""
            return Retryable(f"connection error ({type(exc).__name__}{detail})")
        except httpx.HTTPError as exc:  # e.g. too many redirects: retrying cannot help
            raise RequestFailed(f"{type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return Result(response.content, response.headers.get("content-disposition"))
        reason = describe_error(response)
        if response.status_code in BACKOFF_STATUSES:
            return Retryable(reason)
        if response.status_code not in RETRY_AFTER_STATUSES:
            raise RequestFailed(reason)
        wait = retry_after_seconds(response.headers.get("retry-after"))
        if wait is not None:
            self.gate.close_for(wait, reason)
            if wait > self.policy.max_wait:
                raise RequestFailed(self._too_long(reason, wait))
        return Retryable(reason, wait)

    async def _respect_gate(self, label: str) -> None:
        """Wait out a pause another request was told about, or fail fast if it is too long."""
        wait = self.gate.remaining()
        if wait <= 0:
            return
        if wait > self.policy.max_wait:
            raise RequestFailed(self._too_long(self.gate.reason, wait) + " (not sent)")
        if wait >= NOTICEABLE_WAIT_S:  # not for the leftovers of this request's own wait
            self.notify(f"{label}: waiting {wait:.0f} s as the server asked ({self.gate.reason})")
        await self.sleep(wait)

    def _too_long(self, reason: str, wait: float) -> str:
        return (
            f"{reason}; the server asks to retry in {wait:.0f} s, longer than "
            f"--max-wait {self.policy.max_wait:.0f} s: giving up"
        )
