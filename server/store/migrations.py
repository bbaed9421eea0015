"""Versioned schema migrations, the same SQL for SQLite and PostgreSQL.

The DDL sticks to types both understand (TEXT, BIGINT, INTEGER, DOUBLE PRECISION,
BOOLEAN); times are BIGINT microseconds since the epoch (UTC), exact on both.
`apply_migrations` runs at every start: under a lock (SQLite's write lock, a PostgreSQL
advisory lock per schema) it applies the versions not yet recorded in
`schema_migrations` in one transaction, so any number of workers and replicas may start
at once and a failed migration leaves the schema as it was. A migration, once released,
is never edited: add a new version.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["MIGRATIONS", "SCHEMA_TABLE", "Migration", "latest_version"]


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    """One schema version: statements applied together, in order."""

    version: int
    description: str
    statements: tuple[str, ...]


_V1: Final = (
    """CREATE TABLE experiments (
        name TEXT PRIMARY KEY,
        salt TEXT NOT NULL,
        arms TEXT NOT NULL,
        coverage DOUBLE PRECISION NOT NULL CHECK (coverage >= 0 AND coverage <= 1),
        kill_switch BOOLEAN NOT NULL,
        started_us BIGINT NOT NULL,
        updated_us BIGINT NOT NULL,
        version INTEGER NOT NULL
    )""",
    """CREATE TABLE exposures (
        experiment TEXT NOT NULL,
        user_id TEXT NOT NULL,
        arm TEXT NOT NULL,
        first_exposed_us BIGINT NOT NULL,
        PRIMARY KEY (experiment, user_id)
    )""",
    """CREATE TABLE predictions (
        prediction_id TEXT PRIMARY KEY,
        created_us BIGINT NOT NULL,
        user_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        experiment TEXT NOT NULL,
        arm TEXT,
        ml_enabled BOOLEAN NOT NULL,
        endpoint TEXT NOT NULL,
        model_version TEXT,
        scan TEXT NOT NULL,
        result_count DOUBLE PRECISION,
        result_count_lo DOUBLE PRECISION,
        result_count_hi DOUBLE PRECISION,
        duration_s DOUBLE PRECISION,
        duration_s_lo DOUBLE PRECISION,
        duration_s_hi DOUBLE PRECISION,
        p_empty DOUBLE PRECISION
    )""",
    "CREATE INDEX predictions_created ON predictions (created_us)",
    """CREATE TABLE events (
        event_id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        user_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        prediction_id TEXT,
        experiment TEXT NOT NULL,
        arm TEXT,
        occurred_us BIGINT NOT NULL,
        received_us BIGINT NOT NULL,
        result_count INTEGER,
        duration_s DOUBLE PRECISION,
        elapsed_s DOUBLE PRECISION,
        suggestion_shown BOOLEAN,
        suggestion_applied BOOLEAN,
        desired_min INTEGER,
        desired_max INTEGER,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX events_occurred ON events (occurred_us)",
    "CREATE INDEX events_session ON events (session_id, occurred_us)",
    "CREATE INDEX events_prediction ON events (prediction_id)",
    """CREATE TABLE feedback (
        prediction_id TEXT PRIMARY KEY,
        user_id TEXT,
        session_id TEXT,
        satisfaction INTEGER NOT NULL CHECK (satisfaction BETWEEN 1 AND 5),
        usefulness INTEGER NOT NULL CHECK (usefulness BETWEEN 1 AND 5),
        suggestion TEXT CHECK (length(suggestion) <= 2000),
        received_us BIGINT NOT NULL,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX feedback_received ON feedback (received_us)",
    """CREATE TABLE metric_rollups (
        metric TEXT NOT NULL,
        labels TEXT NOT NULL,
        bucket_us BIGINT NOT NULL,
        n BIGINT NOT NULL,
        total DOUBLE PRECISION NOT NULL,
        minimum DOUBLE PRECISION NOT NULL,
        maximum DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (metric, labels, bucket_us)
    )""",
    """CREATE TABLE service_secrets (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
)

# Monitoring: per-minute sufficient statistics of online accuracy (recomputed, so they
# replace), calibration bins of p_empty, drift counts in the manifest's bins (added up over
# workers), the latest importance-drift results, and leases for one-worker-at-a-time jobs.
_V2: Final = (
    """CREATE TABLE accuracy_rollups (
        bucket_us BIGINT NOT NULL,
        model_version TEXT NOT NULL,
        arm TEXT NOT NULL,
        n BIGINT NOT NULL,
        count_abs_err DOUBLE PRECISION NOT NULL,
        count_sq_err DOUBLE PRECISION NOT NULL,
        count_sum DOUBLE PRECISION NOT NULL,
        count_sum_sq DOUBLE PRECISION NOT NULL,
        count_covered BIGINT NOT NULL,
        duration_abs_err DOUBLE PRECISION NOT NULL,
        duration_sq_err DOUBLE PRECISION NOT NULL,
        duration_sum DOUBLE PRECISION NOT NULL,
        duration_sum_sq DOUBLE PRECISION NOT NULL,
        duration_covered BIGINT NOT NULL,
        brier_sum DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (model_version, arm, bucket_us)
    )""",
    "CREATE INDEX accuracy_rollups_bucket ON accuracy_rollups (bucket_us)",
    """CREATE TABLE calibration_rollups (
        bucket_us BIGINT NOT NULL,
        model_version TEXT NOT NULL,
        arm TEXT NOT NULL,
        bin INTEGER NOT NULL,
        n BIGINT NOT NULL,
        sum_p DOUBLE PRECISION NOT NULL,
        sum_empty BIGINT NOT NULL,
        PRIMARY KEY (model_version, arm, bucket_us, bin)
    )""",
    "CREATE INDEX calibration_rollups_bucket ON calibration_rollups (bucket_us)",
    """CREATE TABLE drift_counts (
        bucket_us BIGINT NOT NULL,
        model_version TEXT NOT NULL,
        feature TEXT NOT NULL,
        bin INTEGER NOT NULL,
        n BIGINT NOT NULL,
        PRIMARY KEY (model_version, bucket_us, feature, bin)
    )""",
    "CREATE INDEX drift_counts_bucket ON drift_counts (bucket_us)",
    """CREATE TABLE importance_results (
        model_version TEXT NOT NULL,
        computed_us BIGINT NOT NULL,
        n BIGINT NOT NULL,
        ndcg DOUBLE PRECISION NOT NULL,
        by_target TEXT NOT NULL,
        PRIMARY KEY (model_version, computed_us)
    )""",
    """CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_us BIGINT NOT NULL
    )""",
    "CREATE INDEX metric_rollups_bucket ON metric_rollups (bucket_us)",
    # Monitoring windows are by arrival (server clock): accuracy rollups, business figures.
    "CREATE INDEX events_received ON events (received_us)",
)

# Drift thresholds, calibrated once per model version and window size by whichever worker
# needs them first and shared by every worker and replica (a calibration costs ~1 s CPU).
_V3: Final = (
    """CREATE TABLE drift_thresholds (
        model_version TEXT NOT NULL,
        window_rows BIGINT NOT NULL,
        method TEXT NOT NULL,
        thresholds TEXT NOT NULL,
        PRIMARY KEY (model_version, window_rows, method)
    )""",
)

# Shadow scoring: a challenger's predictions share the prediction log, flagged by the id
# of the served prediction they shadow (NULL for served rows); the partial index serves
# the paired comparison's join without growing with the served rows.
_V4: Final = (
    "ALTER TABLE predictions ADD COLUMN shadow_of TEXT",
    "CREATE INDEX predictions_shadow ON predictions (model_version, shadow_of) "
    "WHERE shadow_of IS NOT NULL",
)

# A drift flush whose COMMIT broke may have been stored: it is sent again under the same id,
# and a flush id already here means its counts are in (they add, so twice would count twice).
_V5: Final = (
    "CREATE TABLE drift_flushes (flush_id TEXT PRIMARY KEY, at_us BIGINT NOT NULL)",
    "CREATE INDEX drift_flushes_at ON drift_flushes (at_us)",
)

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        version=1,
        description="experiments, exposures, predictions, events, feedback, rollups, secrets",
        statements=_V1,
    ),
    Migration(
        version=2,
        description="monitoring: accuracy and calibration rollups, drift, importance, leases",
        statements=_V2,
    ),
    Migration(
        version=3,
        description="monitoring: drift thresholds per model version and window size",
        statements=_V3,
    ),
    Migration(
        version=4,
        description="shadow scoring: predictions.shadow_of flags a challenger's rows",
        statements=_V4,
    ),
    Migration(
        version=5,
        description="monitoring: drift flush ids, so a flush sent again adds its counts once",
        statements=_V5,
    ),
)

# Created outside the versions: it is where the versions are recorded.
SCHEMA_TABLE: Final = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_us BIGINT NOT NULL
)"""


def latest_version() -> int:
    """The schema version this code expects."""
    return MIGRATIONS[-1].version
