"""Reading what a request carries: multipart forms, JSON objects, uploads.

Every failure becomes the contract's 400; a malformed body is refused before the rate limit
is checked, and spends nothing.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from application import Upload
from contract.errors import InvalidParameter

UPLOAD_FIELDS = frozenset({"file", "files", "image_file"})


async def form_of(request: Request) -> FormData:
    form = await request.form()
    # Parts over 1 MB are spooled to temporary files: closed once the answer is sent, as
    # FastAPI does for the forms it parses itself (same exit stack).
    request.scope["fastapi_middleware_astack"].push_async_callback(form.close)
    return form


def fields_of(form: FormData) -> dict[str, Any]:
    """Every text field but the uploads; unknown ones included (the options refuse them)."""
    return {
        key: value
        for key, value in form.multi_items()
        if key not in UPLOAD_FIELDS and not isinstance(value, UploadFile)
    }


async def upload_of(value: UploadFile | str | None) -> Upload | None:
    """A part where a file is expected; a text part counts as a file without a name (and
    fails to decode as an image if it is not one)."""
    if value is None:
        return None
    if isinstance(value, str):
        return Upload(None, value.encode())
    return Upload(value.filename, await value.read())


async def uploads_of(form: FormData, field: str) -> list[Upload]:
    return [upload for value in form.getlist(field) if (upload := await upload_of(value))]


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; not JSON, nested too deep, or not an object: 400."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidParameter("The body is not valid JSON (or is nested too deeply)") from None
    if not isinstance(body, dict):
        raise InvalidParameter("The JSON body must be an object")
    return body


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().endswith("json")
