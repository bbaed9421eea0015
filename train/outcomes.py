"""Labelled outcomes read from the store into Polars: the scans production really ran.

    read_outcomes(dsn) -> pl.DataFrame
    outcome_records(frame) -> list[ScanRecord]

A labelled outcome is a logged prediction (table `predictions`: the scan as the server
decoded it, the user, when, which version answered) joined on `prediction_id` to its
`scan_completed` event (table `events`: the real result count and duration). Outcomes of
scans where the user applied a suggestion are left out: the scan that ran was the
suggested one, not the logged one. A prediction with several completions (a client
retrying with new event ids) counts once, with its first completion.

The store is read with plain SQL through Polars (`pl.read_database` on a DB-API
connection: sqlite3 for `sqlite:///path.db`, psycopg for `postgresql://...`), read-only;
training never imports the server's store code, only the table and column names of its
schema (version 1). Model versions' predictions come along (`predicted_*` columns), so a
report can show how the version that served did.

Errors:

    OutcomeError   the DSN is malformed, the store cannot be opened or read, or a logged
                   scan does not decode; one line naming the store and the cause
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Final

import msgspec
import polars as pl

from server.domain.scan import Scan, ScanRecord

__all__ = ["OUTCOMES_QUERY", "OutcomeError", "outcome_records", "read_outcomes", "shown_dsn"]

OUTCOMES_QUERY: Final = """
SELECT p.prediction_id, p.user_id, p.created_us, p.model_version, p.scan,
       p.result_count AS predicted_count, p.duration_s AS predicted_duration_s,
       p.p_empty AS predicted_p_empty,
       e.result_count AS result_count, e.duration_s AS duration_s
FROM predictions p
JOIN (
    SELECT prediction_id, MIN(occurred_us) AS first_us
    FROM events
    WHERE type = 'scan_completed' AND prediction_id IS NOT NULL
    GROUP BY prediction_id
) f ON f.prediction_id = p.prediction_id
JOIN events e ON e.prediction_id = f.prediction_id AND e.occurred_us = f.first_us
    AND e.type = 'scan_completed'
WHERE e.result_count IS NOT NULL AND e.duration_s IS NOT NULL
    AND (e.suggestion_applied IS NULL OR e.suggestion_applied = FALSE)
ORDER BY p.created_us, p.prediction_id
"""
_SCHEMA: Final = {
    "prediction_id": pl.String,
    "user_id": pl.String,
    "created_us": pl.Int64,
    "model_version": pl.String,
    "scan": pl.String,
    "predicted_count": pl.Float64,
    "predicted_duration_s": pl.Float64,
    "predicted_p_empty": pl.Float64,
    "result_count": pl.Int64,
    "duration_s": pl.Float64,
}
_SCAN: Final = msgspec.json.Decoder(Scan)


class OutcomeError(Exception):
    """Labelled outcomes cannot be read; one line naming the store and the cause."""


def shown_dsn(dsn: str) -> str:
    """`dsn` without its credentials (user and password), for messages and manifests."""
    scheme, sep, rest = dsn.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if "@" in rest else dsn


def _connect(dsn: str) -> Any:
    if dsn.startswith("sqlite://"):
        path = Path(dsn.removeprefix("sqlite://").removeprefix("/"))
        if not path.name:
            raise OutcomeError(f"store {dsn!r} names no file: expected sqlite:///path/to.db")
        if not path.is_file():
            raise OutcomeError(f"store {dsn}: {path} does not exist: expected a scanopt store")
        try:
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise OutcomeError(f"store {dsn}: cannot open ({exc})") from None
    if dsn.startswith(("postgresql://", "postgres://")):
        import psycopg

        try:
            return psycopg.connect(dsn, connect_timeout=5)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OutcomeError(f"store {shown_dsn(dsn)}: cannot connect ({reason})") from None
    raise OutcomeError(
        f"store DSN {shown_dsn(dsn)!r}: expected sqlite:///path.db or postgresql://user@host/db"
    )


def read_outcomes(dsn: str) -> pl.DataFrame:
    """Every labelled outcome in the store, oldest first (columns: see OUTCOMES_QUERY)."""
    conn = _connect(dsn)
    try:
        frame = pl.read_database(OUTCOMES_QUERY, conn, schema_overrides=_SCHEMA)
    except Exception as exc:  # sqlite3, psycopg and polars each raise their own errors
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OutcomeError(
            f"store {shown_dsn(dsn)}: cannot read labelled outcomes ({reason}): expected the "
            "scanopt tables predictions and events"
        ) from None
    finally:
        conn.close()
    return frame.cast(_SCHEMA)  # type: ignore[arg-type]  # polars' stubs want a narrower map


def outcome_records(frame: pl.DataFrame) -> list[ScanRecord]:
    """Each outcome as a ScanRecord: the logged scan with the result it really had."""
    records = []
    for prediction_id, scan_json, count, duration in frame.select(
        "prediction_id", "scan", "result_count", "duration_s"
    ).iter_rows():
        try:
            scan = _SCAN.decode(scan_json)
            values = {f: getattr(scan, f) for f in Scan.__struct_fields__}
            values.update(result_count=count, duration_s=duration)
            # convert, not the constructor: it checks every bound (and the universe size).
            records.append(msgspec.convert(values, ScanRecord))
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError) as exc:
            raise OutcomeError(
                f"prediction {prediction_id}: its logged scan and outcome are not a valid "
                f"ScanRecord ({exc})"
            ) from None
    return records
