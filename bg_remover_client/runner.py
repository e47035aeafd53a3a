"""Planning the work (what to skip) and running it, `concurrency` files at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bg_remover_client.api import RequestFailed, Uploader
from bg_remover_client.files import (
    InputFile,
    choose_output,
    filename_from_content_disposition,
    plan_outputs,
    write_atomically,
)

Status = Literal["ok", "skipped", "failed"]


@dataclass(frozen=True)
class Job:
    item: InputFile
    planned: Path  # the output path decided before sending


@dataclass(frozen=True)
class Outcome:
    source: Path
    status: Status
    reason: str = ""
    output: Path | None = None
    input_bytes: int = 0
    output_bytes: int = 0


@dataclass(frozen=True)
class Plan:
    jobs: list[Job]
    skipped: list[Outcome]
    claimed: set[Path]  # every planned output: no server-given name may take one of them


def plan(items: Sequence[InputFile], output_dir: Path | None, ext: str, overwrite: bool) -> Plan:
    """Skip inputs whose output exists before sending anything: no budget spent on them."""
    planned = plan_outputs(items, output_dir, ext)
    jobs: list[Job] = []
    skipped: list[Outcome] = []
    for item, path in zip(items, planned, strict=True):
        if path.exists() and not overwrite:
            skipped.append(Outcome(item.path, "skipped", f"{path} exists", output=path))
        else:
            jobs.append(Job(item, path))
    return Plan(jobs, skipped, set(planned))


async def process(job: Job, uploader: Uploader, claimed: set[Path], overwrite: bool) -> Outcome:
    """Upload one file and write its result; every failure becomes an Outcome."""
    source = job.item.path
    try:
        data = await asyncio.to_thread(source.read_bytes)
    except OSError as exc:
        return Outcome(source, "failed", f"cannot read: {exc.strerror or exc}")
    try:
        result = await uploader.remove_background(source.name, data, str(source))
    except RequestFailed as exc:
        return Outcome(source, "failed", str(exc), input_bytes=len(data))
    server_name = filename_from_content_disposition(result.content_disposition)
    target = choose_output(job.planned, server_name, claimed, overwrite)
    claimed.add(target)  # before any await: a concurrent job must not pick the same name
    try:
        await asyncio.to_thread(write_atomically, target, result.content)
    except OSError as exc:
        return Outcome(
            source, "failed", f"cannot write {target}: {exc.strerror or exc}", input_bytes=len(data)
        )
    return Outcome(
        source, "ok", output=target, input_bytes=len(data), output_bytes=len(result.content)
    )


async def run_jobs(
    work: Plan,
    uploader: Uploader,
    concurrency: int,
    overwrite: bool,
    on_done: Callable[[Outcome], None] = lambda _: None,
) -> list[Outcome]:
    """All jobs, at most `concurrency` in flight (files are read inside the limit too, so
    memory stays bounded); outcomes in job order."""
    limit = asyncio.Semaphore(concurrency)

    async def one(job: Job) -> Outcome:
        async with limit:
            outcome = await process(job, uploader, work.claimed, overwrite)
        on_done(outcome)
        return outcome

    return list(await asyncio.gather(*(one(job) for job in work.jobs)))
