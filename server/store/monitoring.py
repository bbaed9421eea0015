"""The store side of monitoring: accuracy rollups, drift counts, importance results, leases.

Plain functions over `Db`, run inside the caller's transaction, the same SQL on SQLite and
PostgreSQL. Every time is BIGINT microseconds; a bucket is the minute an outcome was
*received* by the server (server clock: monotone and trustworthy, unlike a scanner's).

- Accuracy: `refresh_accuracy` recomputes the sufficient statistics of the minutes in
  [since, until) from the join of `scan_completed` events and logged predictions on
  `prediction_id`, replacing what was stored, so it is idempotent: any worker may run it
  any number of times, and re-running it over the last few minutes picks up prediction
  rows that landed after their outcome (the log is written in batches). Sums, sums of
  squares and counts add up over minutes and arms, so MAE, R2, coverage, Brier and ECE of
  any window are exact.
- Drift: each worker adds its per-minute bin counts (`add_drift_counts`); counts add.
- Leases: `acquire_lease` gives a named job to one holder until the lease expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import msgspec

from server.domain.scan import Scan
from server.store.sql import Db, from_us, to_us

__all__ = [
    "CALIBRATION_BINS",
    "MINUTE_US",
    "AccuracySums",
    "CalibrationSums",
    "DriftCount",
    "ImportanceResult",
    "acquire_lease",
    "add_drift_counts",
    "insert_importance",
    "insert_thresholds",
    "prune_before",
    "refresh_accuracy",
    "select_accuracy",
    "select_drift_counts",
    "select_drift_series",
    "select_importance",
    "select_labelled",
    "select_thresholds",
]

MINUTE_US: Final = 60_000_000
# p_empty reliability bins [0, 0.1), ..., [0.9, 1.0], as the training report's table.
CALIBRATION_BINS: Final = 10
_ENCODER = msgspec.json.Encoder()
_BY_TARGET = msgspec.json.Decoder(dict[str, float])
_SCAN = msgspec.json.Decoder(Scan)


class CalibrationSums(msgspec.Struct, frozen=True, kw_only=True):
    """One p_empty bin: outcomes in it, their summed p_empty and how many were empty."""

    bin: int
    n: int
    sum_p: float
    sum_empty: int


class AccuracySums(msgspec.Struct, frozen=True, kw_only=True):
    """Sufficient statistics of labelled outcomes of one version and arm over a window."""

    version: str
    arm: str
    n: int
    count_abs_err: float
    count_sq_err: float
    count_sum: float
    count_sum_sq: float
    count_covered: int
    duration_abs_err: float
    duration_sq_err: float
    duration_sum: float
    duration_sum_sq: float
    duration_covered: int
    brier_sum: float
    calibration: tuple[CalibrationSums, ...] = ()


class DriftCount(msgspec.Struct, frozen=True, kw_only=True):
    """Predictions of one version whose `feature` fell in reference bin `bin` in a minute."""

    bucket_start: datetime
    version: str
    feature: str
    bin: int
    n: int


class ImportanceResult(msgspec.Struct, frozen=True, kw_only=True):
    """One importance-drift computation: nDCG per target and their mean, on n outcomes."""

    version: str
    computed_at: datetime
    n: int
    ndcg: float
    by_target: dict[str, float]


# --- accuracy ------------------------------------------------------------------------------

_EMPTY = "(CASE WHEN e.result_count = 0 THEN 1.0 ELSE 0.0 END)"
_BIN = " + ".join(
    f"(CASE WHEN p.p_empty >= {k / CALIBRATION_BINS} THEN 1 ELSE 0 END)"
    for k in range(1, CALIBRATION_BINS)
)
# Integer division floors the (non-negative) microseconds to their minute on both backends.
_JOINED: Final = """FROM events e JOIN predictions p ON p.prediction_id = e.prediction_id
WHERE e.type = 'scan_completed' AND e.received_us >= ? AND e.received_us < ?
    AND p.p_empty IS NOT NULL AND p.model_version IS NOT NULL"""
_BUCKET: Final = f"(e.received_us / {MINUTE_US}) * {MINUTE_US}"

_ACCURACY_SELECT: Final = f"""SELECT {_BUCKET}, p.model_version, COALESCE(p.arm, 'none'),
    COUNT(*),
    SUM(ABS(e.result_count - p.result_count)),
    SUM((e.result_count - p.result_count) * (e.result_count - p.result_count)),
    SUM(e.result_count), SUM(e.result_count * e.result_count),
    SUM(CASE WHEN e.result_count >= p.result_count_lo AND e.result_count <= p.result_count_hi
        THEN 1 ELSE 0 END),
    SUM(ABS(e.duration_s - p.duration_s)),
    SUM((e.duration_s - p.duration_s) * (e.duration_s - p.duration_s)),
    SUM(e.duration_s), SUM(e.duration_s * e.duration_s),
    SUM(CASE WHEN e.duration_s >= p.duration_s_lo AND e.duration_s <= p.duration_s_hi
        THEN 1 ELSE 0 END),
    SUM((p.p_empty - {_EMPTY}) * (p.p_empty - {_EMPTY}))
{_JOINED}
GROUP BY 1, 2, 3"""

_CALIBRATION_SELECT: Final = f"""SELECT {_BUCKET}, p.model_version, COALESCE(p.arm, 'none'),
    {_BIN}, COUNT(*), SUM(p.p_empty), SUM(CASE WHEN e.result_count = 0 THEN 1 ELSE 0 END)
{_JOINED}
GROUP BY 1, 2, 3, 4"""

_ACCURACY_COLUMNS: Final = (
    "bucket_us, model_version, arm, n, count_abs_err, count_sq_err, count_sum, count_sum_sq, "
    "count_covered, duration_abs_err, duration_sq_err, duration_sum, duration_sum_sq, "
    "duration_covered, brier_sum"
)


def refresh_accuracy(db: Db, since_us: int, until_us: int) -> int:
    """Recompute the accuracy rollups of the minutes in [since, until); rows written.

    `since_us` and `until_us` must be whole minutes.
    """
    window = (since_us, until_us)
    rows = db.rows(_ACCURACY_SELECT, window)
    bins = db.rows(_CALIBRATION_SELECT, window)
    for table in ("accuracy_rollups", "calibration_rollups"):
        db.run(f"DELETE FROM {table} WHERE bucket_us >= ? AND bucket_us < ?", window)  # noqa: S608
    marks = ", ".join("?" for _ in range(15))
    db.many(f"INSERT INTO accuracy_rollups ({_ACCURACY_COLUMNS}) VALUES ({marks})", rows)  # noqa: S608
    db.many(
        "INSERT INTO calibration_rollups (bucket_us, model_version, arm, bin, n, sum_p, "
        "sum_empty) VALUES (?, ?, ?, ?, ?, ?, ?)",
        bins,
    )
    return len(rows)


def select_accuracy(
    db: Db, since_us: int, until_us: int, version: str | None = None
) -> list[AccuracySums]:
    """Accuracy sums per (version, arm) over the minutes in [since, until)."""
    where = "bucket_us >= ? AND bucket_us < ?" + (" AND model_version = ?" if version else "")
    params: tuple[object, ...] = (since_us, until_us) + ((version,) if version else ())
    sums = ", ".join(f"SUM({c.strip()})" for c in _ACCURACY_COLUMNS.split(",")[3:])
    rows = db.rows(
        f"SELECT model_version, arm, {sums} FROM accuracy_rollups WHERE {where} "  # noqa: S608
        "GROUP BY model_version, arm ORDER BY model_version, arm",
        params,
    )
    bins: dict[tuple[str, str], list[CalibrationSums]] = {}
    for v, arm, b, n, sum_p, empty in db.rows(
        "SELECT model_version, arm, bin, SUM(n), SUM(sum_p), SUM(sum_empty) "  # noqa: S608
        f"FROM calibration_rollups WHERE {where} GROUP BY model_version, arm, bin "
        "ORDER BY model_version, arm, bin",
        params,
    ):
        bins.setdefault((str(v), str(arm)), []).append(
            CalibrationSums(bin=int(b), n=int(n), sum_p=float(sum_p), sum_empty=int(empty))
        )
    out = []
    for v, arm, n, *values in rows:
        floats = [float(x) for x in values]
        out.append(
            AccuracySums(
                version=str(v),
                arm=str(arm),
                n=int(n),
                count_abs_err=floats[0],
                count_sq_err=floats[1],
                count_sum=floats[2],
                count_sum_sq=floats[3],
                count_covered=int(floats[4]),
                duration_abs_err=floats[5],
                duration_sq_err=floats[6],
                duration_sum=floats[7],
                duration_sum_sq=floats[8],
                duration_covered=int(floats[9]),
                brier_sum=floats[10],
                calibration=tuple(bins.get((str(v), str(arm)), ())),
            )
        )
    return out


def select_labelled(
    db: Db, version: str, since_us: int, until_us: int, limit: int
) -> list[tuple[Scan, int, float]]:
    """The newest `limit` labelled outcomes of `version`: (scan, result_count, duration_s)."""
    rows = db.rows(
        "SELECT p.scan, e.result_count, e.duration_s FROM events e "
        "JOIN predictions p ON p.prediction_id = e.prediction_id "
        "WHERE e.type = 'scan_completed' AND e.received_us >= ? AND e.received_us < ? "
        "AND p.model_version = ? ORDER BY e.received_us DESC, e.event_id LIMIT ?",
        (since_us, until_us, version, limit),
    )
    return [(_SCAN.decode(str(scan)), int(count), float(dur)) for scan, count, dur in rows]


# --- drift counts ----------------------------------------------------------------------------


def add_drift_counts(
    db: Db, counts: Sequence[DriftCount], flush_id: str | None = None, at_us: int = 0
) -> bool:
    """Add one worker's bin counts to what is stored (each count in its minute); with a
    `flush_id`, only once: False (nothing added) when that flush is stored already."""
    if flush_id is not None and not db.run(
        "INSERT INTO drift_flushes (flush_id, at_us) VALUES (?, ?) "
        "ON CONFLICT (flush_id) DO NOTHING",
        (flush_id, at_us),
    ):
        return False
    rows: dict[tuple[str, int, str, int], int] = {}
    for c in counts:
        key = (c.version, to_us(c.bucket_start) // MINUTE_US * MINUTE_US, c.feature, c.bin)
        rows[key] = rows.get(key, 0) + c.n
    # Sorted so that concurrent flushes lock rows in the same order (no deadlock).
    db.many(
        "INSERT INTO drift_counts (model_version, bucket_us, feature, bin, n) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (model_version, bucket_us, feature, bin) "
        "DO UPDATE SET n = drift_counts.n + excluded.n",
        [(*key, n) for key, n in sorted(rows.items())],
    )
    return True


def select_drift_counts(
    db: Db, version: str, since_us: int, until_us: int
) -> dict[str, dict[int, int]]:
    """feature -> bin -> predictions of `version` in the minutes in [since, until)."""
    out: dict[str, dict[int, int]] = {}
    for feature, b, n in db.rows(
        "SELECT feature, bin, SUM(n) FROM drift_counts WHERE model_version = ? AND "
        "bucket_us >= ? AND bucket_us < ? GROUP BY feature, bin",
        (version, since_us, until_us),
    ):
        out.setdefault(str(feature), {})[int(b)] = int(n)
    return out


def select_drift_series(
    db: Db, version: str, since_us: int, until_us: int, step_us: int
) -> dict[datetime, dict[str, dict[int, int]]]:
    """slice start -> feature -> bin -> predictions of `version`, slices of `step_us` from
    `since_us` (the drift history: one window per slice)."""
    since, step = int(since_us), int(step_us)  # integers, formatted in (same on both backends)
    out: dict[datetime, dict[str, dict[int, int]]] = {}
    for start, feature, b, n in db.rows(
        f"SELECT {since} + ((bucket_us - {since}) / {step}) * {step}, feature, bin, SUM(n) "  # noqa: S608
        "FROM drift_counts WHERE model_version = ? AND bucket_us >= ? AND bucket_us < ? "
        "GROUP BY 1, feature, bin",
        (version, since_us, until_us),
    ):
        out.setdefault(from_us(int(start)), {}).setdefault(str(feature), {})[int(b)] = int(n)
    return out


def select_thresholds(db: Db, version: str, rows: int, method: str) -> str | None:
    """The stored drift thresholds (JSON) of `version` for windows of `rows` rows, or None."""
    row = db.one(
        "SELECT thresholds FROM drift_thresholds WHERE model_version = ? AND window_rows = ? "
        "AND method = ?",
        (version, rows, method),
    )
    return None if row is None else str(row[0])


def insert_thresholds(db: Db, version: str, rows: int, method: str, thresholds: str) -> None:
    """Keep calibrated thresholds (the first writer wins: a calibration is deterministic)."""
    db.run(
        "INSERT INTO drift_thresholds (model_version, window_rows, method, thresholds) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (model_version, window_rows, method) DO NOTHING",
        (version, rows, method, thresholds),
    )


# --- importance results --------------------------------------------------------------------


def insert_importance(db: Db, result: ImportanceResult) -> None:
    db.run(
        "INSERT INTO importance_results (model_version, computed_us, n, ndcg, by_target) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (model_version, computed_us) DO NOTHING",
        (
            result.version,
            to_us(result.computed_at),
            result.n,
            result.ndcg,
            _ENCODER.encode(result.by_target).decode(),
        ),
    )


def select_importance(db: Db, version: str) -> ImportanceResult | None:
    """The latest importance-drift result of `version`, or None."""
    row = db.one(
        "SELECT computed_us, n, ndcg, by_target FROM importance_results "
        "WHERE model_version = ? ORDER BY computed_us DESC LIMIT 1",
        (version,),
    )
    if row is None:
        return None
    computed, n, ndcg, by_target = row
    return ImportanceResult(
        version=version,
        computed_at=from_us(computed),
        n=int(n),
        ndcg=float(ndcg),
        by_target=_BY_TARGET.decode(str(by_target)),
    )


# --- leases and retention ----------------------------------------------------------------------


def acquire_lease(db: Db, name: str, holder: str, now_us: int, ttl_us: int) -> bool:
    """Take or renew the lease `name` for `holder` unless someone else's is still valid."""
    db.run(
        "INSERT INTO leases (name, holder, expires_us) VALUES (?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
        "expires_us = excluded.expires_us "
        "WHERE leases.holder = excluded.holder OR leases.expires_us < ?",
        (name, holder, now_us + ttl_us, now_us),
    )
    row = db.one("SELECT holder FROM leases WHERE name = ?", (name,))
    return row is not None and str(row[0]) == holder


_PRUNED: Final = (
    ("accuracy_rollups", "bucket_us"),
    ("calibration_rollups", "bucket_us"),
    ("drift_counts", "bucket_us"),
    ("drift_flushes", "at_us"),
    ("metric_rollups", "bucket_us"),
    ("importance_results", "computed_us"),
)


def prune_before(db: Db, before_us: int) -> int:
    """Delete monitoring rows older than `before_us` (the retention); rows deleted."""
    return sum(
        db.run(f"DELETE FROM {table} WHERE {column} < ?", (before_us,))  # noqa: S608 - constants
        for table, column in _PRUNED
    )
