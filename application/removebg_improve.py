"""remove.bg's `POST /v1.0/improve`: a client submits a photo the service did badly on, for
the operator to look at (and, say, fine-tune a model with). The image is kept under
UPLOAD_DIR/improve/ as `<id>.<ext>` with `<id>.json` (its filename, tag, client and time), and
swept after FILE_TTL_HOURS like every upload; the answer is `{"id": "<uuid>"}`."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from application.image_work import Cancellation, ImageWorkers
from application.removebg_params import about, image_sources
from application.replies import Caller, Reply, Upload, json_reply
from optimizer.decode import identify_format

FOLDER = "improve"
MAX_TEXT = 200  # characters kept of a filename or a tag
ReadImage = Callable[[Mapping[str, Any], Upload | None], Awaitable[bytes]]


class Improvements:
    def __init__(self, upload_dir: Path, workers: ImageWorkers, read_image: ReadImage) -> None:
        self.folder = upload_dir / FOLDER
        self.workers = workers
        self.read_image = read_image

    async def submit(
        self, caller: Caller, fields: Mapping[str, Any], upload: Upload | None
    ) -> Reply:
        """Store the one image the request names (refused unless it is an image this service
        decodes), with its filename and tag."""
        given = {name: value for name, value in fields.items() if value not in (None, "")}
        image_sources(given, upload)
        data = await self.read_image(given, upload)
        with about("image"):
            image_format = await self.workers.run(Cancellation(), identify_format, data)
        submission = str(uuid.uuid4())
        details = {
            "filename": _text(given.get("image_filename") or (upload and upload.filename)),
            "tag": _text(given.get("tag")),
            "client": caller.client,
            "received": int(time.time()),
            "format": image_format,
        }
        extension = "jpg" if image_format == "JPEG" else image_format.lower()
        await asyncio.to_thread(self._store, submission, extension, data, details)
        return json_reply({"id": submission})

    def _store(self, submission: str, extension: str, data: bytes, details: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{submission}.{extension}").write_bytes(data)
        (self.folder / f"{submission}.json").write_text(json.dumps(details), encoding="utf-8")


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)[:MAX_TEXT]
