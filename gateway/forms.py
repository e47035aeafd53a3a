"""Reading form bodies: every part's raw bytes, parsed off the event loop, in one shape.

Starlette's form parser decodes text parts with any text codec the client names in the
Content-Type (`unicode_escape` included), caps text parts at 1 MiB, hands a file sent as a
text part over as re-decoded text, and keeps repeated fields silently. Here instead:
- names, file names and option values are UTF-8 (invalid bytes replaced); a text part where a
  file is expected keeps its raw bytes (`curl -F 'file=<photo.jpg'`);
- a part may be as large as the body (MAX_CONTENT_LENGTH, enforced by the body guard), so
  remove.bg's `image_file_b64` sent as a form field is not capped;
- at most MAX_PARTS parts; the body is parsed in a worker thread once it has arrived;
- a body that is not a form where one is required, a field sent twice, two files where one is
  expected, or an option sent as a file part is a 400 before any budget is spent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from application import Upload
from contract.errors import MULTIPLE, InvalidParameter

MULTIPART = b"multipart/form-data"
URLENCODED = b"application/x-www-form-urlencoded"
MAX_PARTS = 1000
UPLOAD_FIELDS = frozenset({"file", "files", "bg_image", "image_file", "bg_image_file"})


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None  # None: a text part
    data: bytes


@dataclass(frozen=True)
class Form:
    parts: list[Part]

    def upload(self, name: str) -> Upload | None:
        """The one file sent as `name` (a text part counts, nameless); two are refused."""
        found = self.uploads(name)
        if len(found) > 1:
            raise InvalidParameter(
                f"Send one file in '{name}', not {len(found)}", parameter=name, problem=MULTIPLE
            )
        return found[0] if found else None

    def uploads(self, name: str) -> list[Upload]:
        return [Upload(part.filename, part.data) for part in self.parts if part.name == name]

    def options(self, uploads: Collection[str] = UPLOAD_FIELDS) -> dict[str, str]:
        """The text fields but the uploads, each sent once (unknown names included: the
        options refuse them)."""
        options: dict[str, str] = {}
        for part in self.parts:
            if part.name in uploads:
                continue
            if part.filename is not None:
                raise InvalidParameter(
                    f"'{part.name}' must be a text field, not a file", parameter=part.name
                )
            if part.name in options:
                raise InvalidParameter(
                    f"'{part.name}' was sent more than once", parameter=part.name
                )
            options[part.name] = _text(part.data)
        return options


async def read_form(request: Request, *, urlencoded: bool = False) -> Form:
    """The multipart body (or, when allowed, a URL-encoded one) as a `Form`; anything else is
    a 400."""
    media_type, params = parse_options_header(request.headers.get("content-type", ""))
    if media_type == MULTIPART and params.get(b"boundary"):
        body = await request.body()
        return await asyncio.to_thread(parse_multipart, body, params[b"boundary"])
    if urlencoded and media_type == URLENCODED:
        body = await request.body()
        return await asyncio.to_thread(parse_urlencoded, body)
    expected = "multipart/form-data" + (" or URL-encoded" if urlencoded else "")
    raise InvalidParameter(f"The body must be {expected} (with a boundary)")


def parse_urlencoded(body: bytes) -> Form:
    try:
        pairs = parse_qsl(
            body.decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=MAX_PARTS,
            errors="replace",
        )
    except ValueError:
        raise InvalidParameter(f"At most {MAX_PARTS} fields per form") from None
    return Form([Part(name, None, value.encode()) for name, value in pairs])


def parse_multipart(body: bytes, boundary: bytes) -> Form:
    collector = _Collector()
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except InvalidParameter:
        raise
    except Exception:  # python-multipart's errors on malformed input
        raise InvalidParameter("Malformed multipart body") from None
    if collector.open_part:
        raise InvalidParameter("Malformed multipart body: it ends inside a part")
    return Form(collector.parts)


class _Collector:
    """python-multipart's callbacks, collecting each part's headers and bytes."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.open_part = False
        self._header = b""
        self._value = b""
        self._disposition = b""
        self._data = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_part_data": self._part_data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise InvalidParameter(f"At most {MAX_PARTS} parts per form")
        self.open_part, self._disposition, self._data = True, b"", bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header, self._value = b"", b""

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]

    def _end(self) -> None:
        _, params = parse_options_header(self._disposition)
        if b"name" not in params:
            raise InvalidParameter("Every form part needs a name (Content-Disposition)")
        filename = params.get(b"filename")
        self.parts.append(
            Part(
                _text(params[b"name"]),
                _text(filename) if filename is not None else None,
                bytes(self._data),
            )
        )
        self.open_part = False


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")
