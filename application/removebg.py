"""remove.bg's API over the service's own flow.

`POST /v1.0/removebg` answers one result like the other single-result routes (from the cache,
with an ETag), in remove.bg's headers and JSON shape; with format=zip, remove.bg's zip of the
colours and the matte, made apart from the cache. `GET /v1.0/account` tells the client's
remaining /remove-background budget as credits. What a request asks for is read in
`application.removebg_params`.
"""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from application.admission import Admission
from application.gate import RequestGate
from application.image_work import Cancellation
from application.inputs import Sent
from application.processing import ImageProcessor
from application.removebg_params import image_bytes, parse_removebg, sent_image_bytes
from application.replies import ZIP, Caller, Reply, Upload, json_reply
from application.results import IMAGE, REMOVEBG_JSON, Answer, Shape
from contract import headers, routes
from optimizer import Options, OutputFormat, PreparedImage
from optimizer.encode import encode
from optimizer.geometry import Bounds, Margin, subject_bounds
from optimizer.pipeline import shape_layers
from settings import Settings

CREDITS_PER_IMAGE = "1"  # one unit of the /remove-background budget
UNLIMITED_CREDITS = 1_000_000_000  # what /v1.0/account reports when limits are off
ZIP_COLOR, ZIP_ALPHA = "color.jpg", "alpha.png"
ZIP_JPEG_QUALITY = 90


class RemoveBg:
    def __init__(
        self,
        settings: Settings,
        gate: RequestGate,
        processor: ImageProcessor,
        admission: Admission,
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.processor = processor
        self.admission = admission

    def sent(self, fields: Mapping[str, Any], upload: Upload | None) -> Sent:
        """What a request that does not want the zip sent: its options and its one image."""
        return Sent(
            routes.REMOVEBG,
            sent_image_bytes(fields, upload),
            lambda: parse_removebg(fields),
            lambda: image_bytes(fields, upload, self.settings),
        )

    @staticmethod
    def shape(json_wanted: bool) -> Shape:
        """The image (with Accept: application/json, remove.bg's JSON) and remove.bg's headers
        in place of the contract's result headers."""

        async def reply(answer: Answer) -> Reply:
            result = answer.result
            size = (result.width, result.height)
            described = {**response_headers(size, result.foreground), **answer.headers}
            mimetype = result.format.mimetype
            return await _reply(result.data, mimetype, result.foreground, described, json_wanted)

        return Shape(lambda _: REMOVEBG_JSON if json_wanted else IMAGE, reply)

    async def archive(
        self, caller: Caller, fields: Mapping[str, Any], upload: Upload | None, json_wanted: bool
    ) -> Reply:
        """format=zip: the colours and the matte as two files, neither cached nor tagged."""
        async with self.gate.request(caller, routes.REMOVEBG):
            options = parse_removebg(fields)
            zipped = await self._zip(await image_bytes(fields, upload, self.settings), options)
            described = response_headers(zipped.size, zipped.foreground)
            return await _reply(zipped.data, ZIP, zipped.foreground, described, json_wanted)

    async def account(self, caller: Caller) -> Reply:
        credits = await self.gate.remaining(caller, routes.REMOVE)
        return json_reply(account_body(UNLIMITED_CREDITS if credits is None else credits))

    async def _zip(self, data: bytes, options: Options) -> ZipResult:
        cancellation, workers = Cancellation(), self.processor.workers
        source = await self.processor.read(data, options, cancellation)
        async with self.admission.memory(source.bytes_needed(options)):
            prepared, mask = await self.processor.infer(source, options, cancellation)
            return await workers.run(cancellation, zip_result, prepared, mask, options)


async def _reply(
    data: bytes, mimetype: str, bounds: Bounds | None, described: dict[str, str], json_wanted: bool
) -> Reply:
    if json_wanted:
        return await asyncio.to_thread(lambda: json_reply(json_result(data, bounds), described))
    return Reply(data, mimetype, described)


def response_headers(size: tuple[int, int], bounds: Bounds | None) -> dict[str, str]:
    left, top, width, height = foreground(bounds)
    return {
        headers.REMOVEBG_WIDTH: str(size[0]),
        headers.REMOVEBG_HEIGHT: str(size[1]),
        headers.REMOVEBG_TYPE: "other",  # no foreground classifier here
        headers.REMOVEBG_CREDITS: CREDITS_PER_IMAGE,
        headers.FOREGROUND_TOP: str(top),
        headers.FOREGROUND_LEFT: str(left),
        headers.FOREGROUND_WIDTH: str(width),
        headers.FOREGROUND_HEIGHT: str(height),
    }


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


@dataclass(frozen=True)
class ZipResult:
    data: bytes
    size: tuple[int, int]
    foreground: Bounds | None


def zip_result(prepared: PreparedImage, mask: np.ndarray, options: Options) -> ZipResult:
    """remove.bg's ZIP format: the colours as JPEG and the alpha matte as PNG, both at the
    output size."""
    color, alpha = shape_layers(prepared, mask, options)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            ZIP_COLOR,
            encode(color.convert("RGB"), OutputFormat.JPEG, ZIP_JPEG_QUALITY, lossless_png=False),
        )
        archive.writestr(ZIP_ALPHA, encode(alpha, OutputFormat.PNG, 100, lossless_png=True))
    return ZipResult(buffer.getvalue(), color.size, subject_bounds(alpha, Margin()))


def account_body(credits: int) -> dict[str, Any]:
    """remove.bg's `/account` shape, with this client's remaining budget as its credits."""
    return {
        "data": {
            "attributes": {
                "credits": {"total": credits, "subscription": 0, "payg": credits, "enterprise": 0},
                "api": {"free_calls": credits, "sizes": "all"},
            }
        }
    }
