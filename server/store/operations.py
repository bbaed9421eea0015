"""The store's reads and writes, written once for both backends (plain functions over `Db`).

Each function runs inside the caller's transaction. Events and feedback live in
`server.store.outcomes`, usage analytics in `server.store.usage`.
"""

from __future__ import annotations

from typing import Final

import msgspec

from server.domain.scan import Scan
from server.experiments.config import Arm, ExperimentConfig
from server.store.migrations import MIGRATIONS, SCHEMA_TABLE
from server.store.records import (
    Exposure,
    MetricRollup,
    PredictionRecord,
)
from server.store.sql import Db, from_us, to_us

__all__ = [
    "apply_migrations",
    "ensure_secret",
    "insert_experiment_if_absent",
    "insert_predictions",
    "replace_experiment",
    "schema_version",
    "select_experiment",
    "select_experiments",
    "select_exposures",
    "select_prediction",
    "select_rollups",
    "upsert_exposures",
    "upsert_rollups",
]

_ENCODER = msgspec.json.Encoder()
_ARMS = msgspec.json.Decoder(tuple[Arm, ...])
_SCAN = msgspec.json.Decoder(Scan)


def schema_version(db: Db) -> int:
    row = db.one("SELECT MAX(version) FROM schema_migrations")
    return int(row[0]) if row and row[0] is not None else 0


def apply_migrations(db: Db, now_us: int) -> list[int]:
    """Apply the versions not yet recorded; the caller holds the migration lock."""
    db.run(SCHEMA_TABLE)
    applied = {int(row[0]) for row in db.rows("SELECT version FROM schema_migrations")}
    done = []
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        for statement in migration.statements:
            db.run(statement)
        db.run(
            "INSERT INTO schema_migrations (version, description, applied_us) VALUES (?, ?, ?)",
            (migration.version, migration.description, now_us),
        )
        done.append(migration.version)
    return done


def ensure_secret(db: Db, name: str, candidate: str) -> str:
    """The secret called `name`; the first caller's candidate wins, everyone reads it."""
    db.run(
        "INSERT INTO service_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        (name, candidate),
    )
    row = db.one("SELECT value FROM service_secrets WHERE name = ?", (name,))
    assert row is not None  # inserted just above, in this transaction
    return str(row[0])


# --- experiments -------------------------------------------------------------------------

_SELECT_EXPERIMENTS = (
    "SELECT name, salt, arms, coverage, kill_switch, started_us, updated_us, version "
    "FROM experiments"
)


def _experiment(row: tuple[object, ...]) -> ExperimentConfig:
    name, salt, arms, coverage, kill_switch, started_us, updated_us, version = row
    return ExperimentConfig(
        name=str(name),
        salt=str(salt),
        arms=_ARMS.decode(str(arms)),
        coverage=float(coverage),  # type: ignore[arg-type]
        kill_switch=bool(kill_switch),
        started_at=from_us(started_us),  # type: ignore[arg-type]
        updated_at=from_us(updated_us),  # type: ignore[arg-type]
        version=int(version),  # type: ignore[call-overload]
    )


def _experiment_params(config: ExperimentConfig) -> tuple[object, ...]:
    return (
        config.name,
        config.salt,
        _ENCODER.encode(config.arms).decode(),
        config.coverage,
        config.kill_switch,
        to_us(config.started_at),
        to_us(config.updated_at),
        config.version,
    )


def insert_experiment_if_absent(db: Db, config: ExperimentConfig) -> None:
    db.run(
        "INSERT INTO experiments (name, salt, arms, coverage, kill_switch, started_us, "
        "updated_us, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        _experiment_params(config),
    )


def select_experiment(db: Db, name: str, *, for_update: bool = False) -> ExperimentConfig | None:
    lock = db.for_update if for_update else ""
    row = db.one(f"{_SELECT_EXPERIMENTS} WHERE name = ?{lock}", (name,))
    return None if row is None else _experiment(row)


def select_experiments(db: Db) -> list[ExperimentConfig]:
    rows = db.rows(f"{_SELECT_EXPERIMENTS} ORDER BY name")
    return [_experiment(row) for row in rows]


def replace_experiment(db: Db, config: ExperimentConfig, expected_version: int) -> bool:
    """Write `config` if the stored version is still `expected_version` (optimistic lock)."""
    changed = db.run(
        "UPDATE experiments SET arms = ?, coverage = ?, kill_switch = ?, updated_us = ?, "
        "version = ? WHERE name = ? AND version = ?",
        (
            _ENCODER.encode(config.arms).decode(),
            config.coverage,
            config.kill_switch,
            to_us(config.updated_at),
            config.version,
            config.name,
            expected_version,
        ),
    )
    return changed == 1


# --- prediction log and exposures ------------------------------------------------------

_PREDICTION_FIELDS = PredictionRecord.__struct_fields__
_PREDICTION_COLUMNS = ", ".join(
    f if f != "created_at" else "created_us" for f in _PREDICTION_FIELDS
)
_PREDICTION_MARKS = ", ".join("?" for _ in _PREDICTION_FIELDS)
# Rows per INSERT statement of the prediction log. One statement per row made the store
# thread release and retake the GIL around every row's step (a GIL hand-off with the event
# loop per logged prediction); 25 rows of 20 parameters stay far below SQLite's and
# PostgreSQL's parameter limits, and building them holds the GIL for ~50 µs at a time.
_ROWS_PER_INSERT: Final = 25


def _insert_predictions_sql(rows: int) -> str:
    # Built from the record's field names (constants), never from input; values are parameters.
    values = ", ".join(f"({_PREDICTION_MARKS})" for _ in range(rows))
    return (
        f"INSERT INTO predictions ({_PREDICTION_COLUMNS}) VALUES {values} "  # noqa: S608
        "ON CONFLICT (prediction_id) DO NOTHING"
    )


_INSERT_PREDICTIONS: Final = _insert_predictions_sql(_ROWS_PER_INSERT)
_SELECT_PREDICTION = f"SELECT {_PREDICTION_COLUMNS} FROM predictions WHERE prediction_id = ?"  # noqa: S608


_CREATED_AT: Final = _PREDICTION_FIELDS.index("created_at")
_SCAN_AT: Final = _PREDICTION_FIELDS.index("scan")


def _prediction_params(record: PredictionRecord) -> list[object]:
    # The scan is encoded here, in the store's thread, not on the request path. astuple
    # reads every field in C: half the cost of a getattr per field, and this runs with the
    # GIL held for every logged prediction.
    params: list[object] = list(msgspec.structs.astuple(record))
    params[_CREATED_AT] = to_us(record.created_at)
    params[_SCAN_AT] = _ENCODER.encode(record.scan).decode()
    return params


def insert_predictions(db: Db, records: list[PredictionRecord]) -> None:
    """Log predictions; an id logged before (a retried flush) is kept as it was."""
    # Chunk by chunk, so a batch of 500 never holds the GIL for milliseconds on end: the
    # inserts between chunks release it.
    for start in range(0, len(records), _ROWS_PER_INSERT):
        chunk = records[start : start + _ROWS_PER_INSERT]
        params = [value for record in chunk for value in _prediction_params(record)]
        full = len(chunk) == _ROWS_PER_INSERT
        db.run(_INSERT_PREDICTIONS if full else _insert_predictions_sql(len(chunk)), params)


def select_prediction(db: Db, prediction_id: str) -> PredictionRecord | None:
    row = db.one(_SELECT_PREDICTION, (prediction_id,))
    if row is None:
        return None
    values = dict(zip(_PREDICTION_FIELDS, row, strict=True))
    values["created_at"] = from_us(values["created_at"])
    values["ml_enabled"] = bool(values["ml_enabled"])
    values["scan"] = _SCAN.decode(values["scan"])
    return PredictionRecord(**values)


def upsert_exposures(db: Db, exposures: list[Exposure]) -> None:
    """Record first exposures; an earlier time (another worker's) wins with its arm."""
    # Sorted so that concurrent flushes lock rows in the same order (no deadlock).
    ordered = sorted(exposures, key=lambda e: (e.experiment, e.user_id))
    db.many(
        "INSERT INTO exposures (experiment, user_id, arm, first_exposed_us) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (experiment, user_id) DO UPDATE SET "
        "arm = CASE WHEN excluded.first_exposed_us < exposures.first_exposed_us "
        "THEN excluded.arm ELSE exposures.arm END, "
        "first_exposed_us = CASE WHEN excluded.first_exposed_us < exposures.first_exposed_us "
        "THEN excluded.first_exposed_us ELSE exposures.first_exposed_us END",
        [(e.experiment, e.user_id, e.arm, to_us(e.first_exposed_at)) for e in ordered],
    )


def select_exposures(db: Db, experiment: str) -> list[Exposure]:
    rows = db.rows(
        "SELECT user_id, arm, first_exposed_us FROM exposures WHERE experiment = ? "
        "ORDER BY first_exposed_us, user_id",
        (experiment,),
    )
    return [
        Exposure(experiment=experiment, user_id=u, arm=a, first_exposed_at=from_us(t))
        for u, a, t in rows
    ]


# --- metric rollups ------------------------------------------------------------------------


_MINUTE_US = 60_000_000


def upsert_rollups(db: Db, rollups: list[MetricRollup]) -> None:
    """Merge rollups into what is stored (counts and sums add up), each in its minute.

    A `bucket_start` inside a minute counts for the minute it falls in.
    """
    ordered = sorted(rollups, key=lambda r: (r.metric, r.labels, r.bucket_start))
    db.many(
        "INSERT INTO metric_rollups (metric, labels, bucket_us, n, total, minimum, maximum) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (metric, labels, bucket_us) DO UPDATE SET "
        "n = metric_rollups.n + excluded.n, total = metric_rollups.total + excluded.total, "
        "minimum = CASE WHEN excluded.minimum < metric_rollups.minimum "
        "THEN excluded.minimum ELSE metric_rollups.minimum END, "
        "maximum = CASE WHEN excluded.maximum > metric_rollups.maximum "
        "THEN excluded.maximum ELSE metric_rollups.maximum END",
        [
            (
                r.metric,
                r.labels,
                to_us(r.bucket_start) // _MINUTE_US * _MINUTE_US,
                r.count,
                r.total,
                r.minimum,
                r.maximum,
            )
            for r in ordered
        ],
    )


def select_rollups(
    db: Db, metric: str, since_us: int, until_us: int, step_us: int | None = None
) -> list[MetricRollup]:
    """Rollups of `metric` in [since, until): per minute, or summed over slices of
    `step_us` starting at `since_us` (each row's `bucket_start` is its slice's start)."""
    if step_us is None:
        bucket = "bucket_us"
    else:  # integers, formatted in: the same integer division on both backends
        bucket = (
            f"({int(since_us)} + ((bucket_us - {int(since_us)}) / {int(step_us)}) * {int(step_us)})"
        )
    rows = db.rows(
        f"SELECT labels, {bucket}, SUM(n), SUM(total), MIN(minimum), MAX(maximum) "  # noqa: S608
        "FROM metric_rollups WHERE metric = ? AND bucket_us >= ? AND bucket_us < ? "
        "GROUP BY labels, 2 ORDER BY 2, labels",
        (metric, since_us, until_us),
    )
    return [
        MetricRollup(
            metric=metric,
            labels=str(labels),
            bucket_start=from_us(int(bucket)),
            count=int(n),
            total=float(total),
            minimum=float(lo),
            maximum=float(hi),
        )
        for labels, bucket, n, total, lo, hi in rows
    ]
