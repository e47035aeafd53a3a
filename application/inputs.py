"""Turning what a client sent into image bytes: base64 strings and data URLs."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from contract.errors import InvalidImage

DATA_URL_PREFIX = re.compile(r"^data:[\w/+.-]*(;[\w=-]+)*;base64,", re.IGNORECASE)
WHITESPACE = re.compile(rb"\s+")


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
