"""A micro-batcher with Triton's dynamic batching semantics.

Concurrent single-row requests are grouped into one onnxruntime run:

- an idle model never waits: a request arriving when no run is in flight starts one now;
- requests arriving while a run is in flight queue up; when the run ends they form the
  next batch (at most `max_size` rows), waiting at most `max_wait_s` counted from the
  oldest request's arrival (Triton's max_queue_delay_microseconds), so a full batch goes
  at once and a lone late request is never held longer than that.

Runs happen on a worker thread (onnxruntime releases the GIL) so the event loop keeps
accepting the requests that make up the next batch. One batcher per worker process, one
run in flight at a time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = ["MicroBatcher"]

M = TypeVar("M")
Run = Callable[[npt.NDArray[np.float32]], tuple[M, list[npt.NDArray[np.float32]]]]


class _Pending(Generic[M]):
    __slots__ = ("arrived", "future", "row")

    def __init__(
        self,
        row: npt.NDArray[np.float32],
        future: asyncio.Future[tuple[M, tuple[float, ...]]],
        arrived: float,
    ) -> None:
        self.row = row
        self.future = future
        self.arrived = arrived


class MicroBatcher(Generic[M]):
    """Groups rows submitted concurrently into batched runs of `run`.

    `run` takes a float32 [k, F] matrix and returns (what ran it, one [k] array per output);
    each submitter gets back (what ran it, its row's output values).
    """

    def __init__(
        self,
        run: Run[M],
        *,
        max_size: int,
        max_wait_s: float,
        executor: Executor,
    ) -> None:
        self._run = run
        self._max_size = max_size
        self._max_wait_s = max_wait_s
        self._executor = executor
        self._queue: deque[_Pending[M]] = deque()
        self._arrival = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, row: npt.NDArray[np.float32]) -> tuple[M, tuple[float, ...]]:
        """The outputs of one feature row [F], computed in whichever batch it joins."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[M, tuple[float, ...]]] = loop.create_future()
        self._queue.append(_Pending(row, future, loop.time()))
        if self._drainer is None:
            # Idle: start a run now; nothing waits for company.
            self._drainer = loop.create_task(self._drain())
        else:
            self._arrival.set()
        return await future

    async def close(self) -> None:
        """Let the queued requests finish, then stop."""
        if self._drainer is not None:
            await asyncio.shield(self._drainer)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        first = True
        try:
            while self._queue:
                if not first:
                    await self._gather_more(loop)
                first = False
                batch = [
                    self._queue.popleft() for _ in range(min(self._max_size, len(self._queue)))
                ]
                await self._run_batch(loop, batch)
        finally:
            self._drainer = None

    async def _gather_more(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until the batch is full or the oldest queued request has waited max_wait."""
        deadline = self._queue[0].arrived + self._max_wait_s
        while len(self._queue) < self._max_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), remaining)
            except TimeoutError:
                return

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending[M]]) -> None:
        rows = np.stack([p.row for p in batch])
        try:
            owner, outputs = await loop.run_in_executor(self._executor, self._run, rows)
        except Exception as exc:  # every waiter must hear about it, not only the first
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        columns = [out.tolist() for out in outputs]
        for i, pending in enumerate(batch):
            if not pending.future.done():  # a cancelled client leaves a done future
                pending.future.set_result((owner, tuple(col[i] for col in columns)))
