"""The end-of-run summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from bg_remover_client.runner import Outcome


@dataclass(frozen=True)
class Totals:
    processed: int
    skipped: int
    failed: int
    input_bytes: int  # of the processed files only, so the ratio compares like with like
    output_bytes: int


def totals(outcomes: Sequence[Outcome]) -> Totals:
    done = [o for o in outcomes if o.status == "ok"]
    return Totals(
        processed=len(done),
        skipped=sum(o.status == "skipped" for o in outcomes),
        failed=sum(o.status == "failed" for o in outcomes),
        input_bytes=sum(o.input_bytes for o in done),
        output_bytes=sum(o.output_bytes for o in done),
    )


def compression_ratio(input_bytes: int, output_bytes: int) -> str:
    """As the service computes it: `round((1 - out / in) * 100)%`; negative means larger."""
    if input_bytes <= 0:
        return "n/a"
    return f"{round((1 - output_bytes / input_bytes) * 100)}%"


def describe_ratio(input_bytes: int, output_bytes: int) -> str:
    """`75% (output 0.25x the input)`: a cut-out PNG of a JPEG is often larger, so say so."""
    ratio = compression_ratio(input_bytes, output_bytes)
    if input_bytes <= 0:
        return ratio
    return f"{ratio} (output {output_bytes / input_bytes:.2f}x the input)"


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def print_summary(console: Console, outcomes: Sequence[Outcome], elapsed: float) -> None:
    total = totals(outcomes)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Processed", str(total.processed))
    grid.add_row(
        "Skipped",
        f"{total.skipped}" + (" (output exists; --overwrite to redo)" if total.skipped else ""),
    )
    grid.add_row("Failed", str(total.failed))
    grid.add_row("Input", f"{human_bytes(total.input_bytes)} ({total.input_bytes} bytes)")
    grid.add_row("Output", f"{human_bytes(total.output_bytes)} ({total.output_bytes} bytes)")
    grid.add_row("Compression", describe_ratio(total.input_bytes, total.output_bytes))
    grid.add_row("Elapsed", f"{elapsed:.1f} s")
    console.print("[bold]Summary[/bold]")
    console.print(grid)
    _print_failures(console, [o for o in outcomes if o.status == "failed"])


def _print_failures(console: Console, failed: Sequence[Outcome]) -> None:
    if not failed:
        return
    console.print(f"[bold red]Failed ({len(failed)}):[/bold red]")
    for outcome in failed:
        # markup off: file names and server messages may contain [brackets]; soft_wrap: a
        # long reason stays on one greppable line.
        console.print(
            f"  {outcome.source}: {outcome.reason}", markup=False, highlight=False, soft_wrap=True
        )
