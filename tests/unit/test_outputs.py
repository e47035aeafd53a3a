"""The output hook (operations/outputs.py): every produced image's metrics, its log fields and,
with SAVE_OUTPUTS, its copy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from operations.outputs import Output, OutputHook

OUTPUT = Output(b"x" * 30, "WEBP", "webp", 100, "70%", {"decode": 1.5, "encode": 2.0}, "miss")


def count(metric: str) -> float:
    return REGISTRY.get_sample_value(f"{metric}_count", {"format": "WEBP"}) or 0.0


def test_an_output_is_measured_and_logged_and_not_saved_by_default(tmp_path: Path) -> None:
    before = count("bg_remover_output_bytes"), count("bg_remover_compression_ratio")
    log: dict[str, Any] = {"shed": None}
    asyncio.run(OutputHook()("req-1", log, OUTPUT))
    after = count("bg_remover_output_bytes"), count("bg_remover_compression_ratio")
    assert after == (before[0] + 1, before[1] + 1)
    assert log == {
        "shed": None,
        "input_bytes": 100,
        "output_bytes": 30,
        "compression_ratio": "70%",
        "format": "WEBP",
        "cache": "miss",
        "decode": 1.5,
        "encode": 2.0,
    }
    assert list(tmp_path.iterdir()) == []


def test_with_a_folder_each_output_is_saved_under_its_request_id(tmp_path: Path) -> None:
    hook = OutputHook(tmp_path)
    asyncio.run(hook("req-2", {}, OUTPUT))
    asyncio.run(hook("req-2", {}, OUTPUT))  # a batch: one file per output
    saved = sorted(tmp_path.iterdir())
    assert len(saved) == 2 and all(path.name.startswith("req-2-") for path in saved)
    assert all(path.suffix == ".webp" and path.read_bytes() == OUTPUT.data for path in saved)
