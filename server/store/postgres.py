"""The shared store: PostgreSQL through psycopg 3 and a psycopg_pool connection pool.

Several replicas on several hosts point at one database and so share one truth (the
kill switch, exposures, events). The pool checks a connection before lending it, so a
database restart costs no failed request once the server is back; while it is down,
borrowing times out after `pool_timeout_s` and methods raise `StoreUnavailableError`.
Nothing was written then, except when the connection breaks during a write's COMMIT:
the database may have committed it, and the error says so (events and feedback are
idempotent, so the client sends them again and is told "duplicate").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import psycopg_pool

from server.errors import StoreUnavailableError
from server.store.base import SqlStore
from server.store.sql import Db

__all__ = ["PostgresStore"]

# Start-up may wait longer than a request: the database may be starting too (a pod
# coming up beside it); a worker that cannot connect by then fails to start.
_OPEN_TIMEOUT_S = 10.0


def _redacted(dsn: str) -> str:
    """The DSN without a password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    info.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in info.items())


class PostgresStore(SqlStore):
    """`Store` on PostgreSQL."""

    backend = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int,
        connect_timeout_s: float = 2.0,
        pool_timeout_s: float = 1.0,
    ) -> None:
        super().__init__(threads=pool_size)
        self._dsn = dsn
        self._pool_size = pool_size
        self._connect_timeout_s = connect_timeout_s
        self._pool_timeout_s = pool_timeout_s
        self._pool: psycopg_pool.ConnectionPool | None = None

    def _unavailable(self, exc: Exception, *, committing: bool = False) -> StoreUnavailableError:
        outcome = (
            "; the connection broke while the write was committing, so it may have been "
            "stored: send it again unchanged (a repeat is acknowledged as a duplicate)"
            if committing
            else ""
        )
        return StoreUnavailableError(
            f"PostgreSQL store ({_redacted(self._dsn)}) is unavailable: "
            f"{str(exc).strip() or type(exc).__name__}{outcome}"
        )

    def _connect(self) -> None:
        pool = psycopg_pool.ConnectionPool(
            self._dsn,
            min_size=1,
            max_size=self._pool_size,
            open=False,
            timeout=self._pool_timeout_s,
            # libpq counts whole seconds and treats anything below 2 as 2.
            kwargs={"connect_timeout": max(2, round(self._connect_timeout_s))},
            check=psycopg_pool.ConnectionPool.check_connection,
            name="scanopt-store",
        )
        try:
            pool.open(wait=True, timeout=max(_OPEN_TIMEOUT_S, self._connect_timeout_s))
        except psycopg_pool.PoolTimeout as exc:
            pool.close()
            raise self._unavailable(exc) from None
        self._pool = pool

    def _disconnect(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    @contextlib.contextmanager
    def _transaction(self, *, write: bool, durable: bool = True) -> Iterator[Db]:
        # `durable` is not used: a commit is as durable as the server's own settings make it.
        if self._pool is None:
            raise StoreUnavailableError("the postgresql store is not open")
        committing = False
        try:
            # The pool commits when the block ends normally and rolls back on an exception.
            with self._pool.connection() as conn:
                yield Db(conn, format_params=True, row_locks=True)
                committing = write
        except (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout) as exc:
            # Before COMMIT a lost connection rolls the transaction back; during it, the
            # server may have committed without the answer reaching us.
            raise self._unavailable(exc, committing=committing) from None

    def _lock_migrations(self, db: Db) -> None:
        # One migrator per schema at a time; released when the transaction ends.
        db.run("SELECT pg_advisory_xact_lock(hashtext('scanopt-migrations:' || current_schema()))")
