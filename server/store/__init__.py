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

__all__ = ["dsn_target", "open_store", "store_from_dsn"]


def dsn_target(dsn: str) -> tuple[str, str]:
    """("sqlite", path) or ("postgresql", dsn) for a store DSN; ValueError says what is
    expected (and never repeats the DSN, which may hold a password)."""
    if dsn.startswith("sqlite://"):
        path = dsn.removeprefix("sqlite://")
        # sqlite:///var/x.db is relative (three slashes), sqlite:////abs/x.db absolute.
        path = path[1:] if path.startswith("/") else path
        if not path or path == ":memory:":
            raise ValueError(
                "a SQLite DSN naming a file: sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db (workers share the store, so no :memory:)"
            )
        return "sqlite", path
    if dsn.startswith(("postgresql://", "postgres://")):
        return "postgresql", dsn
    scheme = dsn.split("://")[0] if "://" in dsn else dsn[:0]
    raise ValueError(
        f"sqlite:///path.db or postgresql://user@host:port/db, got scheme {scheme!r}"
        if scheme
        else "sqlite:///path.db or postgresql://user@host:port/db, got no scheme"
    )


def store_from_dsn(dsn: str, *, pool_size: int) -> Store:
    """An unopened store for `dsn` with `pool_size` connections (SCANOPT_STORE_POOL_SIZE in
    the server); a DSN of another kind is an InvalidInputError."""
    try:
        kind, target = dsn_target(dsn)
    except ValueError as exc:
        raise InvalidInputError(f"store DSN: expected {exc}", field="store_dsn") from None
    if kind == "sqlite":
        from server.store.sqlite import SqliteStore

        return SqliteStore(Path(target), threads=pool_size)
    from server.store.postgres import PostgresStore

    return PostgresStore(target, pool_size=pool_size)


async def open_store(dsn: str, *, pool_size: int) -> Store:
    """A connected, migrated store for `dsn`."""
    store = store_from_dsn(dsn, pool_size=pool_size)
    await store.open()
    return store
