"""The embedded store: one SQLite file in WAL mode (stdlib sqlite3), no set-up.

Each pool thread keeps its own connection. WAL lets readers run while one writer writes;
writers take the write lock up front (`BEGIN IMMEDIATE`) so two of them never deadlock
upgrading a read lock, and wait up to `busy_timeout_s` for each other (several Granian
workers share the file). `synchronous=FULL`: a commit is on disk before it is
acknowledged, as the store promises. The prediction log's batches are the exception
(`durable=False`): they commit with `synchronous=NORMAL`, which in WAL mode skips the
fsync of each COMMIT and syncs at checkpoints instead. A batch is then safe from a crash
or SIGKILL of the process (the WAL is written before COMMIT returns) but not from a power
loss or an operating-system crash, which can undo the batches committed since the WAL
was last synced (a checkpoint, or a FULL commit of any connection); those rows were never
acknowledged to anyone, and the buffer loses its unwritten rows in such a crash anyway.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from server.errors import StoreUnavailableError
from server.store.base import SqlStore
from server.store.sql import Db

__all__ = ["SqliteStore"]


class SqliteStore(SqlStore):
    """`Store` on a SQLite file."""

    backend = "sqlite"

    def __init__(self, path: Path, *, threads: int, busy_timeout_s: float = 5.0) -> None:
        super().__init__(threads=threads)
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailableError:
        return StoreUnavailableError(f"SQLite store {str(self.path)!r} is unavailable: {exc}")

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_s,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # closed from another thread at shutdown
            )
            self._enter_wal(conn)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def _enter_wal(self, conn: sqlite3.Connection) -> None:
        """Switch `conn` to WAL, retrying while other connections switch the same new file.

        Connections opening a fresh file at once (the workers of a first start) each read it
        and then need the write lock to mark it WAL. SQLite does not call the busy handler
        where waiting could deadlock a reader upgrading to writer; it returns SQLITE_BUSY
        at once instead (sqlite3_busy_handler: "If SQLite determines that invoking the busy
        handler could result in a deadlock, it will go ahead and return SQLITE_BUSY"), so
        the connect timeout does not cover this statement. The switch is persistent: once
        one connection has made it, the others' retry finds the file in WAL and is a no-op.
        """
        deadline = time.monotonic() + self._busy_timeout_s
        pause = 0.001
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if (
                    exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY
                    or time.monotonic() >= deadline
                ):
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _connect(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot create {str(self.path.parent)!r}: {exc}") from None
        self._connection()

    def _disconnect(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    @contextlib.contextmanager
    def _transaction(self, *, write: bool, durable: bool = True) -> Iterator[Db]:
        conn = self._connection()
        relaxed = write and not durable
        try:
            if relaxed:  # a connection setting: back to FULL before anything else runs on it
                conn.execute("PRAGMA synchronous=NORMAL")
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield Db(conn, format_params=False, row_locks=False)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                if relaxed:
                    conn.execute("PRAGMA synchronous=FULL")
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # a bug in our SQL, not an outage: let it surface as a 500
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None

    def _lock_migrations(self, db: Db) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds SQLite's single write lock."""
