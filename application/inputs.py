"""What a single-result request sent: its image (as an upload, base64 or a data URL) and its
options, each read when the request's flow asks for it (`Application._single`)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from application.replies import Upload
from contract.errors import InvalidImage
from optimizer import Options, parse_options

DATA_URL_PREFIX = re.compile(r"^data:[\w/+.-]*(;[\w=-]+)*;base64,", re.IGNORECASE)
WHITESPACE = re.compile(rb"\s+")


@dataclass(frozen=True)
class Sent:
    route: str
    # The image bytes, when the request carries them itself: what a 304 is checked against.
    data: bytes | None
    options: Callable[[], Options]  # parsed: 400 when they are wrong
    image: Callable[[], Awaitable[bytes]]  # the image, read after the options


def uploaded(route: str, upload: Upload | None, raw_options: Mapping[str, Any]) -> Sent:
    """An image in the form's `file` field, options in its other fields."""

    async def image() -> bytes:
        if upload is None:
            raise InvalidImage("No image was sent in the 'file' field")
        return upload.data

    return Sent(route, upload.data if upload else None, lambda: parse_options(raw_options), image)


def in_base64(route: str, body: Mapping[str, Any]) -> Sent:
    """A JSON body: the image in base64 (or a data URL) as `image`, options in the rest."""
    raw_options = {key: value for key, value in body.items() if key != "image"}
    data = decoded_or_none(body.get("image"))

    async def image() -> bytes:  # decoded once; a value that holds no image is refused here
        return data if data is not None else decode_base64_image(body.get("image"))

    return Sent(route, data, lambda: parse_options(raw_options), image)


def decode_base64_image(value: Any, field: str = "image") -> bytes:
    """A base64 string or `data:` URL to bytes; anything else is an invalid image."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidImage(f"'{field}' must be a non-empty base64 string or data URL")
    payload = DATA_URL_PREFIX.sub("", value.strip(), count=1)
    try:
        data = base64.b64decode(WHITESPACE.sub(b"", payload.encode("ascii")), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidImage(f"'{field}' is not valid base64") from None
    if not data:
        raise InvalidImage(f"'{field}' decodes to an empty file")
    return data


def decoded_or_none(value: Any) -> bytes | None:
    """The image bytes a base64 value holds, or None when it holds none."""
    try:
        return decode_base64_image(value)
    except InvalidImage:
        return None
