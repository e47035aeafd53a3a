"""Admission: requests in flight and memory, with the contract's errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from application.admission import MIB, Admission, memory_budget_bytes
from contract.errors import Overloaded, PayloadTooLarge
from operations.resources import container_memory_limit
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_requests_over_the_cap_are_overloaded_at_once() -> None:
    admission = Admission(max_requests=2, memory_budget=MIB, wait_s=1)
    with admission.request(), admission.request():
        with pytest.raises(Overloaded) as refused, admission.request():
            pass
        assert refused.value.headers["Retry-After"] == "2"
    with admission.request():  # slots come back
        assert admission.in_flight == 1
    assert admission.in_flight == 0


def test_memory_over_the_whole_budget_is_too_large() -> None:
    async def scenario() -> None:
        admission = Admission(max_requests=10, memory_budget=100 * MIB, wait_s=1)
        with pytest.raises(PayloadTooLarge, match="100 MiB"):
            async with admission.memory(101 * MIB):
                pass
        assert admission.memory_in_use == 0

    asyncio.run(scenario())


def test_work_that_does_not_fit_waits_for_room() -> None:
    async def scenario() -> list[str]:
        admission = Admission(max_requests=10, memory_budget=100 * MIB, wait_s=2)
        order: list[str] = []

        async def work(name: str, needed: int, hold_s: float) -> None:
            async with admission.memory(needed):
                order.append(f"{name} in")
                assert admission.memory_in_use <= admission.memory_budget
                await asyncio.sleep(hold_s)
            order.append(f"{name} out")

        await asyncio.gather(work("first", 70 * MIB, 0.2), work("second", 70 * MIB, 0))
        assert admission.memory_in_use == 0
        return order

    assert asyncio.run(scenario()) == ["first in", "first out", "second in", "second out"]


def test_work_that_waits_too_long_is_overloaded_with_retry_after() -> None:
    async def scenario() -> None:
        admission = Admission(max_requests=10, memory_budget=100 * MIB, wait_s=0.1)
        async with admission.memory(80 * MIB):
            with pytest.raises(Overloaded) as refused:
                async with admission.memory(30 * MIB):
                    pass
        assert int(refused.value.headers["Retry-After"]) >= 1
        async with admission.memory(100 * MIB):  # all of it is free again
            pass

    asyncio.run(scenario())


def test_the_budget_comes_from_the_setting_then_the_container() -> None:
    assert memory_budget_bytes(Settings(memory_budget_mb=1500), limit=2048 * MIB) == 1500 * MIB
    assert memory_budget_bytes(Settings(), limit=2048 * MIB) == 1024 * MIB
    assert memory_budget_bytes(Settings(), limit=4096 * MIB) == 3072 * MIB
    assert memory_budget_bytes(Settings(), limit=512 * MIB) == 256 * MIB  # never below


def test_container_limit_from_cgroup_files(tmp_path: Path) -> None:
    v2, v1 = tmp_path / "memory.max", tmp_path / "limit_in_bytes"
    assert container_memory_limit((v2, v1)) is None  # neither exists
    v1.write_text("2147483648\n")
    assert container_memory_limit((v2, v1)) == 2 * 1024 * MIB
    v1.write_text("9223372036854771712\n")  # v1's "no limit"
    assert container_memory_limit((v2, v1)) is None
    v2.write_text("max\n")
    assert container_memory_limit((v2, v1)) is None
    v2.write_text("1073741824\n")
    assert container_memory_limit((v2, v1)) == 1024 * MIB


def test_glibc_is_told_to_return_freed_memory() -> None:
    """In a child process: the allocator settings of this one stay glibc's defaults."""
    code = (
        "from PIL import Image\n"
        "from operations.resources import PILLOW_BLOCK_BYTES\n"
        "from operations.resources import return_freed_memory_promptly as tune\n"
        "told = tune() and Image.core.get_block_size() == PILLOW_BLOCK_BYTES\n"
        "raise SystemExit(0 if told else 1)"
    )
    told = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60)
    assert told.returncode == 0  # these machines run glibc


def test_trimming_gives_a_freed_heap_back() -> None:
    """In a child process: 400 MiB freed in the holes of a heap stay resident until trimmed."""
    code = (
        "import numpy as np, psutil\n"
        "from operations.resources import return_freed_memory_promptly, trim_free_heap\n"
        "return_freed_memory_promptly()\n"
        "blocks = [np.ones(1 << 20, dtype=np.uint8) for _ in range(800)]\n"
        "del blocks[::2]  # every other block: holes the heap's top cannot give back\n"
        "before = psutil.Process().memory_info().rss\n"
        "assert trim_free_heap()\n"
        "after = psutil.Process().memory_info().rss\n"
        "print((before - after) >> 20)\n"
    )
    trimmed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, timeout=60, capture_output=True, text=True
    )
    assert trimmed.returncode == 0, trimmed.stderr
    assert int(trimmed.stdout) >= 300, f"{trimmed.stdout} MiB given back"


def test_large_work_trims_the_heap_before_its_memory_is_free_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trimmed: list[int] = []
    admission = Admission(max_requests=10, memory_budget=1024 * MIB, wait_s=1)

    def trim() -> bool:
        trimmed.append(admission.memory_in_use)  # still admitted while it trims
        return True

    monkeypatch.setattr("application.admission.trim_free_heap", trim)

    async def work() -> None:
        for needed in (MIB, 100 * MIB):  # a small image is not worth a trim
            async with admission.memory(needed):
                pass

    asyncio.run(work())
    assert trimmed == [100 * MIB] and admission.memory_in_use == 0
