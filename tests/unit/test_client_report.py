"""bg_remover_client.report: totals and the summary text."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from bg_remover_client.report import (
    compression_ratio,
    describe_ratio,
    human_bytes,
    print_summary,
    totals,
)
from bg_remover_client.runner import Outcome

OUTCOMES = [
    Outcome(Path("a.jpg"), "ok", input_bytes=1000, output_bytes=250),
    Outcome(Path("b.jpg"), "ok", input_bytes=3000, output_bytes=750),
    Outcome(Path("c.jpg"), "skipped", "c_no_bg.png exists"),
    Outcome(
        Path("[d].jpg"),
        "failed",
        "HTTP 415 unsupported_media_type: [not] an image",
        input_bytes=500,
    ),
]


def test_totals_count_bytes_of_processed_files_only() -> None:
    total = totals(OUTCOMES)
    assert (total.processed, total.skipped, total.failed) == (2, 1, 1)
    assert (total.input_bytes, total.output_bytes) == (4000, 1000)


@pytest.mark.parametrize(
    ("size_in", "size_out", "ratio"),
    [
        (4000, 1000, "75%"),
        (1000, 1000, "0%"),
        (1000, 2500, "-150%"),
        (0, 0, "n/a"),
        (3, 2, "33%"),
    ],
)
def test_compression_ratio_as_the_service_computes_it(
    size_in: int, size_out: int, ratio: str
) -> None:
    assert compression_ratio(size_in, size_out) == ratio


def test_describe_ratio_says_how_much_larger() -> None:
    assert describe_ratio(1000, 2500) == "-150% (output 2.50x the input)"
    assert describe_ratio(0, 10) == "n/a"


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (62055, "62.1 kB"),
        (1_500_000, "1.5 MB"),
        (7_000_000_000_000, "7000.0 GB"),
    ],
)
def test_human_bytes(size: int, text: str) -> None:
    assert human_bytes(size) == text


def test_summary_lists_every_failure_verbatim() -> None:
    buffer = io.StringIO()
    print_summary(Console(file=buffer, width=60), OUTCOMES, elapsed=12.34)
    text = buffer.getvalue()
    assert "Processed    2" in text and "Skipped      1" in text and "Failed       1" in text
    assert "4.0 kB (4000 bytes)" in text and "1.0 kB (1000 bytes)" in text
    assert "75% (output 0.25x the input)" in text
    assert "12.3 s" in text
    # brackets survive (no rich markup) and the long reason is not wrapped
    assert "  [d].jpg: HTTP 415 unsupported_media_type: [not] an image\n" in text
