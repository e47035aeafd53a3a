"""Reading JSON bodies: checked cheaply before parsing, parsed off the event loop.

A JSON body here is one object of a few members (options, a base64 image, a path). Before
parsing, the brackets and commas are counted (C speed): more than MAX_JSON_VALUES of them is
refused, so a 16 MB `[[],[],...]` never becomes millions of Python objects. Large bodies are
parsed in a worker thread. Every failure is the contract's 400, before the rate limit.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request

from contract.errors import InvalidParameter

# Upper bound on the values one body may hold: every array, object and extra member needs a
# bracket or a comma (base64 never contains either; a data URL holds one comma).
MAX_JSON_VALUES = 1000
INLINE_PARSE_BYTES = 64 * 1024  # smaller bodies parse in microseconds, on the loop


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; not JSON, too many values, nested too deep, a member given
    twice, or not an object: 400."""
    raw = await request.body()
    values = raw.count(b"[") + raw.count(b"{") + raw.count(b",")
    if values > MAX_JSON_VALUES:
        raise InvalidParameter(
            f"The JSON body holds more than {MAX_JSON_VALUES} values; send one flat object"
        )
    if len(raw) > INLINE_PARSE_BYTES:
        return await asyncio.to_thread(parse_json_object, raw)
    return parse_json_object(raw)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw, object_pairs_hook=_unique_members)
    except (ValueError, RecursionError):
        raise InvalidParameter("The body is not valid JSON (or is nested too deeply)") from None
    if not isinstance(body, dict):
        raise InvalidParameter("The JSON body must be an object")
    return body


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise InvalidParameter("A JSON member was sent more than once")
    return members


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().endswith("json")
