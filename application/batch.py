"""The batch route's flow: its files checked and named, each produced on its own (at most
BATCH_PARALLELISM in work at once, each admitted by its own memory needs, and one that fails
does not fail the others), then the zip of the results and `manifest.json`."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from application.caching import CachedProcessor
from application.image_url import ImageUrls
from application.inputs import BG_IMAGE, split_background
from application.replies import ZIP, Caller, Posted, Reply, Upload
from application.results import IMAGE, content_disposition, download_name, server_timing
from contract import headers
from contract.errors import InvalidImage, InvalidParameter, ServiceError
from optimizer import Options
from settings import Settings

log = logging.getLogger("bg_remover.application")
ARCHIVE_NAME = "images_no_bg.zip"


class Batches:
    def __init__(self, producer: CachedProcessor, settings: Settings, urls: ImageUrls) -> None:
        self.producer = producer
        self.urls = urls
        self.max_files = settings.max_batch_files
        self.parallelism = settings.batch_parallelism
        # A file waits for memory as long as the request may last: its client waits anyway.
        self.memory_wait_s = settings.request_timeout_s

    async def archive(self, caller: Caller, form: Posted) -> bytes:
        uploads = form.uploads("files")
        if not uploads:
            raise InvalidImage("No images were sent in the 'files' field")
        if len(uploads) > self.max_files:
            raise InvalidParameter(f"At most {self.max_files} files per batch")
        raw_options, backdrop = split_background(form.options(), form.upload(BG_IMAGE))
        background, options = await backdrop.read(self.urls, backdrop.parse(raw_options))
        names = unique_names(download_name(upload.filename, options) for upload in uploads)
        in_work = asyncio.Semaphore(self.parallelism)
        entries = await asyncio.gather(
            *(
                self._entry(caller, upload, name, options, in_work, background)
                for upload, name in zip(uploads, names, strict=True)
            )
        )
        return await asyncio.to_thread(batch_archive, entries)

    async def _entry(
        self,
        caller: Caller,
        upload: Upload,
        name: str,
        options: Options,
        in_work: asyncio.Semaphore,
        background: bytes | None,
    ) -> BatchEntry:
        entry = BatchEntry(upload.filename or "image", name, len(upload.data))
        try:
            async with in_work:
                produced = await self.producer.produce(
                    caller, upload.data, options, self.memory_wait_s, background
                )
        except ServiceError as error:  # that file's alone
            entry.error = error
        except Exception as error:  # a fault with this file must not fail the others
            log.error("batch file %s failed", caller.request_id, exc_info=error)
            entry.error = ServiceError("This file could not be processed; the error was logged")
        else:
            entry.data, entry.mimetype = produced.result.data, produced.result.format.mimetype
            entry.etag, entry.cache = produced.keys.etag(IMAGE), produced.cache
        return entry


def batch_reply(archive: bytes, elapsed_ms: float) -> Reply:
    return Reply(
        archive,
        ZIP,
        {
            headers.CONTENT_DISPOSITION: content_disposition(ARCHIVE_NAME),
            headers.SERVER_TIMING: server_timing({}, elapsed_ms, None),
        },
    )


@dataclass
class BatchEntry:
    """One input of a batch: its output, or the error that stopped it."""

    name: str
    output_name: str
    input_bytes: int
    data: bytes | None = None
    mimetype: str | None = None
    error: ServiceError | None = None
    etag: str | None = None
    cache: str | None = None  # hit, mask or miss

    def manifest_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "output": self.output_name if self.error is None else None,
            "status": "ok" if self.error is None else "error",
            "original_size": self.input_bytes,
            "size": len(self.data) if self.data is not None else None,
            "mimetype": self.mimetype,
            "etag": self.etag,
            "cache": self.cache,
            "error": self.error.body() if self.error is not None else None,
        }


def batch_archive(entries: Iterable[BatchEntry]) -> bytes:
    """A zip of every successful output plus `manifest.json` describing each input."""
    entries = list(entries)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for entry in entries:
            if entry.data is not None:
                # Images are compressed already; deflating them again costs time for nothing.
                archive.writestr(entry.output_name, entry.data, zipfile.ZIP_STORED)
        manifest = {"files": [entry.manifest_row() for entry in entries]}
        archive.writestr("manifest.json", json.dumps(manifest, indent=2), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def unique_names(names: Iterable[str]) -> list[str]:
    """Names made unique by a `-2`, `-3`… before the extension, in order of appearance."""
    taken: set[str] = set()
    unique = []
    for name in names:
        stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
        candidate, count = name, 1
        while candidate in taken:
            count += 1
            candidate = f"{stem}-{count}{dot}{ext}"
        taken.add(candidate)
        unique.append(candidate)
    return unique
