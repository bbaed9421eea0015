"""The clients' background reporting queues: events and feedback never block or break a scan.

A reporting call is put on a bounded queue and the caller goes on at once; one sender
(a daemon thread for the sync client, a task for the async one) sends the queue in order,
each call with the client's retries (they are idempotent: a retry carries the same
event_id, or rates the same prediction, and is never counted twice). When the queue is full
the new call is dropped and counted, so a scanner facing a dead server keeps bounded
memory. `close` flushes what is queued for up to `flush_timeout_s`, then counts the rest
as dropped. Nothing here raises into the scanner: the outcome of every call is a count in
`ReportStats`, and failures are logged on the "scanopt.client" logger (the first, then
one in every `_LOG_EVERY`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Final

from server.client_wire import Ack, Report, ReportStats, ScanoptError

__all__ = ["AsyncReportQueue", "ReportQueue"]

_LOG: Final = logging.getLogger("scanopt.client")
_LOG_EVERY: Final = 100


class _Counts:
    """ReportStats behind a lock (the sync queue's counts move on two threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = ReportStats()

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self._stats, name, getattr(self._stats, name) + delta)

    def failed(self, report: Report, exc: ScanoptError) -> None:
        with self._lock:
            self._stats.failed += 1
            n = self._stats.failed
        if n == 1 or n % _LOG_EVERY == 0:
            _LOG.warning(
                "scanopt report not delivered (%d so far): %s: %s", n, type(report).__name__, exc
            )

    def snapshot(self) -> ReportStats:
        with self._lock:
            s = self._stats
            return ReportStats(
                queued=s.queued, sent=s.sent, dropped=s.dropped, failed=s.failed, skipped=s.skipped
            )


class ReportQueue:
    """A bounded queue drained by one daemon thread calling `send` (which retries)."""

    def __init__(self, send: Callable[[Report], Ack], *, capacity: int) -> None:
        self._send = send
        self._queue: queue.Queue[Report] = queue.Queue(capacity)
        self._counts = _Counts()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def stats(self) -> ReportStats:
        """A copy of the counts so far."""
        return self._counts.snapshot()

    def skipped(self) -> None:
        """Count a call that had nothing to send (feedback without a prediction)."""
        self._counts.add(skipped=1)

    def put(self, report: Report) -> bool:
        """Queue a call; False (and counted as dropped) when full or closed."""
        if self._stop.is_set():
            self._counts.add(dropped=1)
            return False
        self._ensure_thread()
        try:
            self._queue.put_nowait(report)
        except queue.Full:
            self._counts.add(dropped=1)
            return False
        self._counts.add(queued=1)
        return True

    def flush(self, timeout_s: float) -> bool:
        """Wait until every queued call was sent or failed; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self, timeout_s: float) -> None:
        """Flush for up to `timeout_s`, stop the sender, count what is left as dropped."""
        self.flush(timeout_s)
        self._stop.set()
        left = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()
            left += 1
        self._counts.add(dropped=left)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._drain, name="scanopt-reports", daemon=True
                )
                self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                report = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self._send(report)
                self._counts.add(sent=1)
            except ScanoptError as exc:
                self._counts.failed(report, exc)
            finally:
                self._queue.task_done()


class AsyncReportQueue:
    """The asyncio twin of `ReportQueue`: one task on the caller's event loop drains it."""

    def __init__(self, send: Callable[[Report], Awaitable[Ack]], *, capacity: int) -> None:
        self._send = send
        self._queue: asyncio.Queue[Report] = asyncio.Queue(capacity)
        self._counts = _Counts()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def stats(self) -> ReportStats:
        """A copy of the counts so far."""
        return self._counts.snapshot()

    def skipped(self) -> None:
        """Count a call that had nothing to send (feedback without a prediction)."""
        self._counts.add(skipped=1)

    def put(self, report: Report) -> bool:
        """Queue a call (from the event loop); False (counted as dropped) when full or closed."""
        if self._closed:
            self._counts.add(dropped=1)
            return False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        try:
            self._queue.put_nowait(report)
        except asyncio.QueueFull:
            self._counts.add(dropped=1)
            return False
        self._counts.add(queued=1)
        return True

    async def flush(self, timeout_s: float) -> bool:
        """Wait until every queued call was sent or failed; False on timeout."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout_s: float) -> None:
        """Flush for up to `timeout_s`, stop the sender, count what is left as dropped."""
        await self.flush(timeout_s)
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        left = self._queue.qsize()
        self._counts.add(dropped=left)

    async def _drain(self) -> None:
        while True:
            report = await self._queue.get()
            try:
                await self._send(report)
                self._counts.add(sent=1)
            except ScanoptError as exc:
                self._counts.failed(report, exc)
            except asyncio.CancelledError:  # closed while this one was on its way
                self._counts.add(dropped=1)
                raise
            finally:
                self._queue.task_done()
