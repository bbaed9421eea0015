"""The store: experiment config, exposures, prediction log, events, feedback, rollups.

`open_store(dsn)` picks the backend from the DSN (`sqlite:///path/to.db` or
`postgresql://...`), connects, applies migrations and seeds the default experiment.
Backends are imported lazily so that importing the records (the Python client does)
does not pull in a database driver. The interface is `server.store.interface.Store`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from server.errors import InvalidInputError

if TYPE_CHECKING:  # the interface imports the experiment config, which imports our errors
    from server.store.interface import Store

__all__ = ["open_store", "store_from_dsn"]


def store_from_dsn(dsn: str, *, pool_size: int = 4) -> Store:
    """An unopened store for `dsn`; a DSN of another kind is an InvalidInputError."""
    if dsn.startswith("sqlite://"):
        path = dsn.removeprefix("sqlite://")
        # sqlite:///var/x.db is relative (three slashes), sqlite:////abs/x.db absolute.
        path = path[1:] if path.startswith("/") else path
        if not path or path == ":memory:":
            raise InvalidInputError(
                f"SQLite DSN {dsn!r} names no file; expected sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db (workers share the store, so no :memory:)"
            )
        from server.store.sqlite import SqliteStore

        return SqliteStore(Path(path), threads=pool_size)
    if dsn.startswith(("postgresql://", "postgres://")):
        from server.store.postgres import PostgresStore

        return PostgresStore(dsn, pool_size=pool_size)
    raise InvalidInputError(
        f"unsupported store DSN {dsn.split('://')[0]!r}://...; expected sqlite:///path.db "
        "or postgresql://user@host:port/db"
    )


async def open_store(dsn: str, *, pool_size: int = 4) -> Store:
    """A connected, migrated store for `dsn`."""
    store = store_from_dsn(dsn, pool_size=pool_size)
    await store.open()
    return store
