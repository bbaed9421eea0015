"""Group commit: acknowledged single-row writes that arrive together share one COMMIT.

Each event and feedback write must be on disk before it is acknowledged, so each used to
be a transaction of its own on one of the worker's pool threads, with a sync at every
COMMIT. Under load up to 4 threads a worker (8 with 2 workers) then competed for
SQLite's single write lock, whose busy handler sleeps between tries (1, 2, 5, 10 ms and
up; our reading of why they queued, not traced further): in a soak of events and feedback alone at
800 requests a second (2 workers, this project's 2-core machine) the server kept up
with 616-706 of them and answers queued for seconds; with group commit it kept up with
all 800, p95 36-68 ms. PostgreSQL pays a WAL flush per COMMIT the same way.

`GroupCommit.submit` never waits to gather company: a write that finds no commit in
flight starts one at once (a batch of one, as before). Writes that arrive while a
commit is in flight wait for it to end, then all go in the next transaction together
(at most `max_batch`), one COMMIT and one sync for all of them, and each is acknowledged
only once that COMMIT returned. So the added latency is zero when writes are rare, and
under load a write waits for at most the commit in flight plus its own.

Inside the shared transaction each write runs under a SAVEPOINT. One that raises one of
this service's own errors (a `ConflictError` for a retry with another body, say) is
rolled back to its savepoint and gets its error; the others still commit. Any other
exception (the store going away, a driver error) aborts the transaction, and every write
in it gets the error the backend raised, with nothing of theirs stored, exactly as if
each had run alone when the store failed; a connection lost during the COMMIT itself
leaves all of them "may have been stored", which the backend's error says.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final

from server.errors import ScanoptError, StoreUnavailableError
from server.store.sql import Db

__all__ = ["GroupCommit"]

MAX_BATCH: Final = 64

Write = Callable[[Db], Any]
# Runs `job(db)` inside one durable write transaction in the store's thread pool.
RunTransaction = Callable[[Callable[[Db], list[object]]], Awaitable[list[object]]]


class _Failed:
    """One write's own error inside a batch that committed."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class GroupCommit:
    """Batches the durable writes of one event loop (one worker) into shared commits."""

    def __init__(self, run: RunTransaction, *, max_batch: int = MAX_BATCH) -> None:
        self._run = run
        self._max_batch = max_batch
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only weak refs
        self.commits = 0  # COMMITs issued, for tests and the docs' figures
        self.writes = 0

    async def submit(self, write: Write) -> Any:
        """Run `write(db)` in a durable transaction; its result once that transaction
        committed. Raises what `write` raised, or what the transaction raised."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        if not self._draining:
            self._draining = True
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit(batch)
        finally:
            self._draining = False

    async def _commit(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> None:
        writes = [write for write, _ in batch]
        try:
            results = await self._run(lambda db: _apply(db, writes))
        except Exception as exc:  # the whole transaction failed: nothing of it stored
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (shutdown): so are the writes waiting on it
            for _, future in batch + self._pending:
                future.cancel()
            raise
        self.commits += 1
        self.writes += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its request was cancelled; the row is stored all the same
                continue
            if isinstance(result, _Failed):
                future.set_exception(result.error)
            else:
                future.set_result(result)


def _apply(db: Db, writes: list[Write]) -> list[object]:
    """Each write under its own savepoint (in the pool thread, inside the transaction)."""
    if len(writes) == 1:  # alone: its error is the transaction's, as without grouping
        return [writes[0](db)]
    results: list[object] = []
    for write in writes:
        with _savepoint(db) as failed:
            results.append(write(db))
        if failed:
            results.append(_Failed(failed[0]))
    return results


@contextlib.contextmanager
def _savepoint(db: Db) -> Iterator[list[BaseException]]:
    failed: list[BaseException] = []
    db.run("SAVEPOINT scanopt_write")
    try:
        yield failed
    except ScanoptError as exc:
        if isinstance(exc, StoreUnavailableError):
            raise
        db.run("ROLLBACK TO SAVEPOINT scanopt_write")
        failed.append(exc)
    db.run("RELEASE SAVEPOINT scanopt_write")
