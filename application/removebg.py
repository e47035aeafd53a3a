"""remove.bg's API over the service's own flow.

`POST /v1.0/removebg`: the parameters are read first (`application.removebg_params`: a bad
one costs no credit), then the client's budget is spent (a preview a quarter, any other size
one), then the image and the background image are read and the result made like every
single-result route's (from the cache, with an ETag and 304s), in remove.bg's headers and JSON
shape. A photo where the model finds no subject is refused (`unknown_foreground`). format=zip
is remove.bg's zip of the edge-corrected colours and the matte, made apart from the cache.
`GET /v1.0/account` tells the client's remaining /remove-background budget as credits.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Mapping
from typing import Any

from application.caching import CachedProcessor
from application.gate import RequestGate, units
from application.image_url import ImageUrls
from application.image_work import Cancellation
from application.inputs import Sent, decode_base64_image
from application.removebg_archive import ZipResult, zip_result
from application.removebg_params import RemoveBgRequest, parse_removebg, sent_image_bytes
from application.replies import ZIP, Caller, Reply, Upload, json_reply
from application.results import IMAGE, REMOVEBG_JSON, Answer, Results, Shape
from contract import headers, routes
from contract.errors import InvalidImage, InvalidParameter, NoSubject
from optimizer import Options
from optimizer.geometry import Bounds

UNLIMITED_CREDITS = 1_000_000_000  # what /v1.0/account reports when limits are off
NO_SUBJECT = "No subject was found in the image; see the documentation on supported images"


class RemoveBg:
    def __init__(
        self, gate: RequestGate, producer: CachedProcessor, results: Results, urls: ImageUrls
    ) -> None:
        self.gate = gate
        self.producer = producer
        self.results = results
        self.urls = urls

    async def remove(
        self,
        caller: Caller,
        fields: Mapping[str, Any],
        upload: Upload | None,
        json_wanted: bool,
        bg_upload: Upload | None = None,
    ) -> Reply:
        started = self.results.clock()
        request = parse_removebg(fields, upload, bg_upload)
        shape = self.shape(request, json_wanted)
        if not request.archive and request.bg_image_url is None:
            data = sent_image_bytes(fields, upload)
            sent = Sent(routes.REMOVEBG, data, lambda: self._revalidated(request), _nothing)
            if unchanged := await self.results.unchanged(caller, sent, shape):
                return unchanged
        async with self.gate.request(caller, routes.REMOVEBG, request.credits):
            data = await self.image(fields, upload)
            if request.archive:
                return await self._archive(request, data, json_wanted)
            background, options = await request.backdrop.read(self.urls, request.options)
            try:
                produced = await self.producer.produce(caller, data, options, None, background)
            except InvalidParameter as error:
                if error.parameter == "bg_image":  # the background did not decode
                    error.parameter = "bg_image_url" if request.bg_image_url else "bg_image_file"
                raise
            if not produced.subject_found:
                raise NoSubject(NO_SUBJECT)
            return await shape.reply(self.results.answer(produced, options, shape, started))

    @staticmethod
    def shape(request: RemoveBgRequest, json_wanted: bool) -> Shape:
        """The image (with Accept: application/json, remove.bg's JSON) and remove.bg's headers
        in place of the contract's result headers."""

        async def reply(answer: Answer) -> Reply:
            result = answer.result
            size = (result.width, result.height)
            described = {**response_headers(request, size, result.foreground), **answer.headers}
            mimetype = result.format.mimetype
            return await _reply(result.data, mimetype, result.foreground, described, json_wanted)

        return Shape(lambda _: REMOVEBG_JSON if json_wanted else IMAGE, reply)

    async def account(self, caller: Caller) -> Reply:
        credits = await self.gate.remaining(caller, routes.REMOVE)
        return json_reply(account_body(UNLIMITED_CREDITS if credits is None else credits))

    def _revalidated(self, request: RemoveBgRequest) -> Options:
        """The options a revalidation's ETag is made for (a background file's digest too)."""
        return request.backdrop.named(request.options)

    async def image(self, fields: Mapping[str, Any], upload: Upload | None) -> bytes:
        """The request's one image: an upload, base64, or (when allowed) a URL."""
        if upload is not None:
            return upload.data
        if "image_file_b64" in fields and fields["image_file_b64"] not in (None, ""):
            return decode_base64_image(fields["image_file_b64"], "image_file_b64")
        if fields.get("image_url") in (None, ""):
            raise InvalidImage("image_file must be a file upload; send base64 as image_file_b64")
        return await self.urls.fetch(fields["image_url"], "image_url")

    async def _archive(self, request: RemoveBgRequest, data: bytes, json_wanted: bool) -> Reply:
        """format=zip: the colours and the matte as two files, neither cached nor tagged."""
        zipped = await self._zip(data, request.options)
        described = response_headers(request, zipped.size, zipped.foreground)
        return await _reply(zipped.data, ZIP, zipped.foreground, described, json_wanted)

    async def _zip(self, data: bytes, options: Options) -> ZipResult:
        processor, cancellation = self.producer.processor, Cancellation()
        source = await processor.read(data, options, cancellation)
        async with self.producer.admission.memory(source.bytes_needed(options)):
            prepared, segmentation = await processor.segment(source, options, cancellation)
            if not segmentation.subject_found:
                raise NoSubject(NO_SUBJECT)
            return await processor.workers.run(
                cancellation, zip_result, prepared, segmentation.mask, options
            )


def _nothing() -> Awaitable[bytes]:  # a revalidation reads no image
    raise AssertionError("a revalidation reads no image")


async def _reply(
    data: bytes, mimetype: str, bounds: Bounds | None, described: dict[str, str], json_wanted: bool
) -> Reply:
    if json_wanted:
        return await asyncio.to_thread(lambda: json_reply(json_result(data, bounds), described))
    return Reply(data, mimetype, described)


def response_headers(
    request: RemoveBgRequest, size: tuple[int, int], bounds: Bounds | None
) -> dict[str, str]:
    left, top, width, height = foreground(bounds)
    described = {
        headers.REMOVEBG_WIDTH: str(size[0]),
        headers.REMOVEBG_HEIGHT: str(size[1]),
        headers.REMOVEBG_CREDITS: units(request.credits),
        headers.FOREGROUND_TOP: str(top),
        headers.FOREGROUND_LEFT: str(left),
        headers.FOREGROUND_WIDTH: str(width),
        headers.FOREGROUND_HEIGHT: str(height),
    }
    if request.type_header is not None:
        described[headers.REMOVEBG_TYPE] = request.type_header
    return described


def json_result(data: bytes, bounds: Bounds | None) -> dict[str, Any]:
    left, top, width, height = foreground(bounds)
    return {
        "data": {
            "result_b64": base64.b64encode(data).decode("ascii"),
            "foreground_top": top,
            "foreground_left": left,
            "foreground_width": width,
            "foreground_height": height,
        }
    }


def foreground(bounds: Bounds | None) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the subject; all zero when none was found."""
    if bounds is None:
        return 0, 0, 0, 0
    left, top, right, bottom = bounds
    return left, top, right - left, bottom - top


def account_body(credits: Any) -> dict[str, Any]:
    """remove.bg's `/account` shape, with this client's remaining budget as its credits (a
    number, to the quarter; the free calls a whole number)."""
    total = float(credits) if credits % 1 else int(credits)
    return {
        "data": {
            "attributes": {
                "credits": {"total": total, "subscription": 0, "payg": total, "enterprise": 0},
                "api": {"free_calls": int(credits), "sizes": "all"},
            }
        }
    }
