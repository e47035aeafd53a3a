"""What happens to every image the service produces besides its answer: its size and
compression in the metrics, its figures on the request's log line, and with SAVE_OUTPUTS a copy
in OUTPUT_DIR, named `<request id>-<n>.<ext>`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operations.metrics import COMPRESSION_RATIO, OUTPUT_BYTES


@dataclass(frozen=True)
class Output:
    data: bytes
    format: str  # PNG, JPEG, WEBP or AVIF
    extension: str
    input_bytes: int
    compression_ratio: str  # as the JSON result writes it ("78%")
    timings_ms: Mapping[str, float]
    cache: str  # hit, mask or miss


class OutputHook:
    def __init__(self, save_to: Path | None = None) -> None:
        self.save_to = save_to  # None: no copies

    async def __call__(self, request_id: str, log: dict[str, Any], output: Output) -> None:
        """Record `output` (a batch logs its last one) and, when asked to, save it."""
        size = len(output.data)
        OUTPUT_BYTES.labels(format=output.format).observe(size)
        COMPRESSION_RATIO.labels(format=output.format).observe(1 - size / output.input_bytes)
        log.update(
            {
                "input_bytes": output.input_bytes,
                "output_bytes": size,
                "compression_ratio": output.compression_ratio,
                "format": output.format,
                "cache": output.cache,
                **output.timings_ms,
            }
        )
        if self.save_to is not None:
            await asyncio.to_thread(self._save, self.save_to, request_id, output)

    @staticmethod
    def _save(folder: Path, request_id: str, output: Output) -> None:
        (folder / f"{request_id}-{time.time_ns()}.{output.extension}").write_bytes(output.data)
