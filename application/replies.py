"""What the application layer receives from the HTTP edge and hands back to it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

JSON = "application/json"
ZIP = "application/zip"


@dataclass
class Caller:
    """One request's caller, as the edge identified it, and what the edge adds to the answer.

    `headers` go on the response whatever its outcome, errors included (the rate-limit headers
    once the limit was checked); `log` holds this request's fields for its log line.
    """

    client: str  # the client key: whose budgets and (CACHE_SCOPE=client) whose cache
    request_id: str = "-"
    headers: dict[str, str] = field(default_factory=dict)
    log: dict[str, Any] = field(default_factory=dict)
    if_none_match: str | None = None  # the ETags the client holds
    loadtest: bool = False  # a load-test identity: its budgets are at the load-test limit


@dataclass(frozen=True)
class Upload:
    """One uploaded file, read in full by the edge."""

    filename: str | None
    data: bytes


class Posted(Protocol):
    """A multipart request's parts, as the edge read them: files by field name (`upload`:
    at most one), and the text fields (`options`)."""

    def upload(self, name: str) -> Upload | None: ...

    def uploads(self, name: str) -> list[Upload]: ...

    def options(self) -> dict[str, str]: ...


@dataclass
class Reply:
    """A successful answer: bytes of `media_type`, and headers; or, with `not_modified`, the
    news that the client's copy is current (no body)."""

    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)
    not_modified: bool = False


@dataclass(frozen=True)
class HealthReport:
    body: dict[str, Any]

    @property
    def unhealthy(self) -> bool:
        return self.body["status"] == "unhealthy"


def json_reply(body: Any, headers: dict[str, str] | None = None) -> Reply:
    """A compact UTF-8 JSON reply (call it off the event loop for large bodies). A lone
    surrogate in a string is written as its JSON escape instead of failing to encode."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    data = text.encode("utf-8", "backslashreplace")
    return Reply(data, JSON, headers or {})
