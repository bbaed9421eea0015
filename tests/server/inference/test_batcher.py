"""The micro-batcher: Triton's semantics (an idle model never waits; arrivals during a run
form the next batch, at most max_size rows)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import pytest

from server.inference.batcher import MicroBatcher

Rows = npt.NDArray[np.float32]


class GatedRun:
    """A fake model: doubles its input, records batch sizes; the first run waits on a gate."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.gate = threading.Event()
        self.started = threading.Event()

    def __call__(self, rows: Rows) -> tuple[str, list[Rows]]:
        self.sizes.append(len(rows))
        self.started.set()
        self.gate.wait(10)
        return "m", [rows[:, 0] * 2, rows[:, 0] + 1]


def row(x: float) -> Rows:
    return np.array([x, 0.0], dtype=np.float32)


async def until(event: threading.Event) -> None:
    while not event.is_set():
        await asyncio.sleep(0.001)


def test_idle_model_runs_a_lone_request_without_waiting() -> None:
    """With nothing in flight a request runs at once, even with a minute of max wait."""
    run = GatedRun()
    run.gate.set()

    async def scenario() -> tuple[str, tuple[float, ...]]:
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(run, max_size=8, max_wait_s=60.0, executor=pool)
            return await asyncio.wait_for(batcher.submit(row(3.0)), 10)

    assert asyncio.run(scenario()) == ("m", (6.0, 4.0))
    assert run.sizes == [1]


def test_arrivals_during_a_run_form_the_next_batches() -> None:
    """Requests queued behind a run go together, split at max_size, each getting its row."""
    run = GatedRun()

    async def scenario() -> list[tuple[str, tuple[float, ...]]]:
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(run, max_size=3, max_wait_s=0.0, executor=pool)
            first = asyncio.ensure_future(batcher.submit(row(0.0)))
            await until(run.started)
            rest = [asyncio.ensure_future(batcher.submit(row(float(i)))) for i in range(1, 6)]
            await asyncio.sleep(0)
            run.gate.set()
            return list(await asyncio.wait_for(asyncio.gather(first, *rest), 10))

    results = asyncio.run(scenario())
    assert run.sizes == [1, 3, 2]
    assert [values for _, values in results] == [(2.0 * i, i + 1.0) for i in range(6)]


def test_a_full_batch_does_not_wait_for_max_wait() -> None:
    """Once max_size requests are queued the next run starts, however long max_wait is."""
    run = GatedRun()

    async def scenario() -> None:
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(run, max_size=2, max_wait_s=60.0, executor=pool)
            first = asyncio.ensure_future(batcher.submit(row(0.0)))
            await until(run.started)
            rest = [asyncio.ensure_future(batcher.submit(row(1.0))) for _ in range(2)]
            await asyncio.sleep(0)
            run.gate.set()
            await asyncio.wait_for(asyncio.gather(first, *rest), 10)

    asyncio.run(scenario())
    assert run.sizes == [1, 2]


def test_a_failed_run_fails_every_request_in_it() -> None:
    """An exception in a batched run reaches each waiter, and the batcher keeps working."""
    calls: list[int] = []

    def flaky(rows: Rows) -> tuple[str, list[Rows]]:
        calls.append(len(rows))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return "m", [rows[:, 0]]

    async def scenario() -> tuple[str, tuple[float, ...]]:
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(flaky, max_size=4, max_wait_s=0.0, executor=pool)
            with pytest.raises(RuntimeError, match="boom"):
                await batcher.submit(row(1.0))
            return await batcher.submit(row(5.0))

    assert asyncio.run(scenario()) == ("m", (5.0,))
