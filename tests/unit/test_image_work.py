"""The image work threads: work whose request is gone is stopped (running work sees its
`Cancellation`, queued work never starts), and a starved pool shows in its health check and
its metrics."""

from __future__ import annotations

import asyncio
import threading

import pytest
from prometheus_client import REGISTRY

from application.image_work import STARVED_AFTER_S, Cancellation, ImageWorkers
from optimizer.decode import WorkCancelled


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def blocking(started: threading.Event, release: threading.Event, seen: list[bool]):  # type: ignore[no-untyped-def]
    """Work that runs until released, then reports whether it was cancelled meanwhile."""

    def work(cancellation: Cancellation) -> str:
        started.set()
        release.wait(10)
        seen.append(cancellation())
        if cancellation():
            raise WorkCancelled()
        return "done"

    return work


def test_work_runs_in_a_pool_thread_and_returns_its_result() -> None:
    workers = ImageWorkers(threads=2)

    async def main() -> str:
        return await workers.run(Cancellation(), threading.current_thread)  # type: ignore[arg-type]

    assert asyncio.run(main()).name.startswith("image-work")


def test_cancelling_the_caller_cancels_running_and_queued_work() -> None:
    workers = ImageWorkers(threads=1)
    started, release, seen = threading.Event(), threading.Event(), []
    queued_ran = threading.Event()
    cancelled_before = sample("bg_remover_image_work_cancelled_total")

    async def main() -> None:
        running_cancellation, queued_cancellation = Cancellation(), Cancellation()
        work = blocking(started, release, seen)
        running = asyncio.ensure_future(
            workers.run(running_cancellation, work, running_cancellation)
        )
        queued = asyncio.ensure_future(workers.run(queued_cancellation, queued_ran.set))
        await asyncio.to_thread(started.wait, 10)
        assert workers.check().detail.startswith("1 of 1 threads busy, 1 waiting")
        running.cancel()
        queued.cancel()
        for task in (running, queued):
            with pytest.raises(asyncio.CancelledError):
                await task
        assert running_cancellation() and queued_cancellation()
        release.set()
        await asyncio.sleep(0)

    asyncio.run(main())
    workers._executor.shutdown(wait=True)
    assert seen == [True]  # the running work saw it was no longer wanted
    assert not queued_ran.is_set()  # the queued work never started
    assert sample("bg_remover_image_work_cancelled_total") - cancelled_before == 2
    assert workers.busy == 0 and workers.check().detail == "0 of 1 threads busy, 0 waiting"


def test_a_starved_pool_is_reported_and_measured() -> None:
    clock = Clock()
    workers = ImageWorkers(threads=1, clock=clock)
    started, release, seen = threading.Event(), threading.Event(), []
    waiting_before = sample("bg_remover_image_work_waiting")

    async def main() -> None:
        cancellation = Cancellation()
        running = asyncio.ensure_future(
            workers.run(cancellation, blocking(started, release, seen), cancellation)
        )
        queued = asyncio.ensure_future(workers.run(Cancellation(), lambda: "later"))
        await asyncio.to_thread(started.wait, 10)
        assert workers.check().ok
        assert sample("bg_remover_image_work_waiting") - waiting_before == 1
        assert sample("bg_remover_image_work_busy_threads") >= 1
        clock.now += STARVED_AFTER_S
        starved = workers.check()
        assert not starved.ok and "waited 5 s for a thread" in starved.detail
        release.set()
        assert await running == "done" and await queued == "later"
        assert workers.check().ok

    asyncio.run(main())
    assert sample("bg_remover_image_work_waiting") == waiting_before
