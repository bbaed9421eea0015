"""One way to talk SQL to either backend: a connection inside a transaction, and time.

Statements are written once with `?` placeholders (SQLite's style) and rewritten to `%s`
for psycopg; none of them contains a literal `?` or `%`. Values always travel as
parameters, never in the statement text.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

__all__ = ["Connection", "Db", "from_us", "to_us"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    return (moment - _EPOCH) // _MICROSECOND


def from_us(us: int) -> datetime:
    """The UTC datetime of `us` microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=int(us))


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What sqlite3 and psycopg connections share (DB-API 2)."""

    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...

    def cursor(self) -> Any: ...


@functools.lru_cache(maxsize=256)
def _to_format_style(sql: str) -> str:
    return sql.replace("?", "%s")


class Db:
    """A connection inside one transaction; the backend commits or rolls back around it."""

    def __init__(self, conn: Connection, *, format_params: bool, row_locks: bool) -> None:
        self._conn = conn
        self._format_params = format_params
        # PostgreSQL locks rows read for update; SQLite's BEGIN IMMEDIATE locks everything.
        self.for_update = " FOR UPDATE" if row_locks else ""

    def _sql(self, sql: str) -> str:
        return _to_format_style(sql) if self._format_params else sql

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Every row of a query."""
        return [tuple(row) for row in self._conn.execute(self._sql(sql), params).fetchall()]

    def one(self, sql: str, params: Sequence[object] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        """Execute a statement; the number of rows it changed."""
        cursor: _Cursor = self._conn.execute(self._sql(sql), params)
        return cursor.rowcount

    def many(self, sql: str, seq: Iterable[Sequence[object]]) -> None:
        """Execute a statement once per parameter row (pipelined by psycopg); `seq` is
        consumed as the rows are executed, so a generator builds each row just in time."""
        cursor = self._conn.cursor()
        try:
            cursor.executemany(self._sql(sql), seq)
        finally:
            cursor.close()
