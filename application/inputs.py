"""What a processing request sent: its image (as an upload, base64 or a data URL), its options
and its background picture (`bg_image`: an upload, base64 or, where the server allows it, a
URL), each read when the request's flow asks for it (`Application._single`)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from application.image_url import ImageUrls
from application.replies import Posted, Upload
from cache import input_digest
from contract.errors import MULTIPLE, InvalidImage, InvalidParameter
from optimizer import Options, parse_options

DATA_URL_PREFIX = re.compile(r"^data:[\w/+.-]*(;[\w=-]+)*;base64,", re.IGNORECASE)
WHITESPACE = re.compile(rb"\s+")
BG_IMAGE, BG_IMAGE_URL = "bg_image", "bg_image_url"
# The digest the options carry while a background is still to be downloaded.
TO_BE_DOWNLOADED = "bg_image_url"


@dataclass(frozen=True)
class Backdrop:
    """The background picture a request sent: its bytes, or a URL to fetch, or neither."""

    data: bytes | None = None
    url: str | None = None

    @classmethod
    def of(cls, data: bytes | None, url: Any) -> Backdrop:
        url = None if url in (None, "") else url
        if data and url is not None:
            raise InvalidParameter(
                "Send the background as bg_image or as bg_image_url, not both",
                parameter=BG_IMAGE,
                problem=MULTIPLE,
            )
        return cls(data or None, url)

    @cached_property
    def sent_digest(self) -> str | None:
        """The hash of the bytes sent, taken once however often the options are parsed."""
        return None if self.data is None else input_digest(self.data)

    def digest(self) -> str | None:
        """What the options name the background by before it is read."""
        return TO_BE_DOWNLOADED if self.url is not None else self.sent_digest

    def parse(self, raw_options: Mapping[str, Any]) -> Options:
        """The options, naming this background (400 when they are wrong)."""
        return parse_options(raw_options, background_digest=self.digest())

    def named(self, options: Options) -> Options:
        """`options` naming the background sent as bytes (unchanged without one)."""
        return options if self.data is None else replace(options, bg_image=self.sent_digest)

    async def read(self, urls: ImageUrls, options: Options) -> tuple[bytes | None, Options]:
        """The background's bytes (downloaded now when sent as a URL) and `options` naming
        it by the hash of those bytes."""
        if self.url is None:
            return self.data, self.named(options)
        data = await urls.fetch(self.url, BG_IMAGE_URL)
        return data, replace(options, bg_image=input_digest(data))


@dataclass(frozen=True)
class Sent:
    route: str
    # The image bytes, when the request carries all it is made from: what a 304 is checked
    # against (a background still to be downloaded cannot be).
    data: bytes | None
    options: Callable[[], Options]  # parsed: 400 when they are wrong
    image: Callable[[], Awaitable[bytes]]  # the image, read after the options
    background: Backdrop = Backdrop()


def uploaded(route: str, form: Posted) -> Sent:
    """An image in the form's `file` field, a background in `bg_image` (or `bg_image_url`),
    options in its other fields."""
    upload, bg_upload = form.upload("file"), form.upload(BG_IMAGE)

    async def image() -> bytes:
        if upload is None:
            raise InvalidImage("No image was sent in the 'file' field")
        return upload.data

    raw_options, backdrop = split_background(form.options(), bg_upload)
    data = upload.data if upload and backdrop.url is None else None
    return Sent(route, data, lambda: backdrop.parse(raw_options), image, backdrop)


def in_base64(route: str, body: Mapping[str, Any]) -> Sent:
    """A JSON body: the image in base64 (or a data URL) as `image`, the background the same
    way as `bg_image` (or `bg_image_url`), options in the rest."""
    raw_options = {key: value for key, value in body.items() if key not in ("image", BG_IMAGE)}
    bg_upload = _background_base64(body.get(BG_IMAGE))
    raw_options, backdrop = split_background(raw_options, bg_upload)
    data = decoded_or_none(body.get("image"))

    async def image() -> bytes:  # decoded once; a value that holds no image is refused here
        return data if data is not None else decode_base64_image(body.get("image"))

    revalidated = data if backdrop.url is None else None
    return Sent(route, revalidated, lambda: backdrop.parse(raw_options), image, backdrop)


def split_background(
    raw_options: Mapping[str, Any], bg_upload: Upload | None
) -> tuple[dict[str, Any], Backdrop]:
    """The options but `bg_image_url`, and the background sent as a file or as that URL."""
    options = {key: value for key, value in raw_options.items() if key != BG_IMAGE_URL}
    bg_data = bg_upload.data if bg_upload else None
    return options, Backdrop.of(bg_data, raw_options.get(BG_IMAGE_URL))


def _background_base64(value: Any) -> Upload | None:
    if value in (None, ""):
        return None
    try:
        return Upload(None, decode_base64_image(value, BG_IMAGE))
    except InvalidImage as error:
        raise InvalidParameter(error.details, parameter=BG_IMAGE) from None


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
