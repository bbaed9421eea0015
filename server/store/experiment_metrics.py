"""Per-user experiment metrics from the store: the analysis input (`UserMetrics`).

Who is in the experiment and in which arm comes from the exposures table (the assignment
the server logged), never from the arm the scanner echoes in its events. What each user did
comes from all of their events, predictions and feedback, as experimentation platforms do:
a user's behaviour is one stream, whatever experiment they are in.

A user's start is their first exposure. A scan whose event refers to a prediction served
in an arm of this experiment happened after the exposure by definition, so when such an
event is older than the logged exposure (the scanner's clock, a late log flush, a replay of
simulated days), the start is that event's time instead. Events from the start on are the
experiment period; events in the `pre_window` before it give the pre-experiment covariates
(CUPED), None for users without any.

Definitions, per user, over the experiment period (matching the field docs of `UserMetrics`):

- a session is a session_id with an event in the period (a session running across the
  start counts in both periods); its start is its first scan's start (scan_started, or a
  scan_completed's time minus its duration) and its end its last event;
- n_scans / n_empty_scans: scan_completed events / those with result_count 0;
- total_scan_time_s: summed over sessions, end minus start: the wall-clock time spent
  scanning, so the re-tuning between scans counts, not only the scans' own durations;
- time to first result: per session with a result (a first_result event, or a non-empty
  scan_completed), its first one minus the session's start;
- n_scans_in_desired_range: completed scans whose count lies in [desired_min, desired_max]
  (an open end when only one is sent; scans without either are not in range);
- prediction error: |logged predicted count - actual count| over completed scans whose
  prediction_id has a logged prediction with a count (control users' too: the model runs
  for them, its answer is only not shown);
- satisfaction: ratings of the user's predictions (by the prediction log's user, else the
  feedback's); a rating is timed by the scan it rates (its scan_completed), else by when
  it arrived;
- returned: an event on a later UTC day than the start;
- adopted_suggestion: a completed scan with suggestion_applied.

`until` cuts everything at a moment (a daily look sees only what had happened by then).
The aggregation is pushed down to SQL (one row per user and session), the same statements
on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Final

import msgspec

from server.store.records import UserMetrics
from server.store.sql import Db, from_us, to_us

__all__ = ["DEFAULT_PRE_WINDOW", "ExperimentMetrics", "select_experiment_metrics"]

DEFAULT_PRE_WINDOW: Final = timedelta(days=14)
_DAY_US: Final = 86_400_000_000
_NEVER: Final = 2**62  # an `until` beyond any stored time

# The user's start: first exposure, or their first event linked to a prediction served in
# an arm of this experiment when that is earlier. Parameters: experiment, until, experiment,
# until.
_STARTS: Final = """starts AS (
    SELECT x.user_id, x.arm,
        CASE WHEN l.t IS NOT NULL AND l.t < x.first_exposed_us THEN l.t
             ELSE x.first_exposed_us END AS start_us
    FROM exposures x LEFT JOIN (
        SELECT e.user_id, MIN(e.occurred_us) AS t
        FROM events e JOIN predictions p ON p.prediction_id = e.prediction_id
        WHERE p.experiment = ? AND p.arm IS NOT NULL AND e.occurred_us < ?
        GROUP BY e.user_id) l ON l.user_id = x.user_id
    WHERE x.experiment = ?),
started AS (SELECT user_id, arm, start_us FROM starts WHERE start_us < ?)"""

_USERS: Final = f"WITH {_STARTS} SELECT user_id, arm, start_us FROM started"  # noqa: S608

# One row per user, session and period (1: from the start on, 0: the pre-window before it).
# Parameters: the four of _STARTS, then pre-window start offset, until.
_SESSIONS: Final = f"""WITH {_STARTS}
SELECT e.user_id, e.session_id,
    CASE WHEN e.occurred_us >= s.start_us THEN 1 ELSE 0 END AS post,
    MIN(CASE WHEN e.type = 'scan_started' THEN CAST(e.occurred_us AS DOUBLE PRECISION)
             WHEN e.type = 'scan_completed'
             THEN CAST(e.occurred_us AS DOUBLE PRECISION) - e.duration_s * 1000000.0
        END) AS first_start_us,
    MAX(e.occurred_us) AS last_us,
    MIN(CASE WHEN e.type = 'first_result' THEN e.occurred_us
             WHEN e.type = 'scan_completed' AND e.result_count > 0 THEN e.occurred_us
        END) AS first_result_us,
    SUM(CASE WHEN e.type = 'scan_completed' THEN 1 ELSE 0 END) AS scans,
    SUM(CASE WHEN e.type = 'scan_completed' AND e.result_count = 0 THEN 1 ELSE 0 END) AS empty,
    SUM(CASE WHEN e.type = 'scan_completed'
              AND (e.desired_min IS NOT NULL OR e.desired_max IS NOT NULL)
              AND e.result_count >= COALESCE(e.desired_min, 0)
              AND (e.desired_max IS NULL OR e.result_count <= e.desired_max)
        THEN 1 ELSE 0 END) AS in_range,
    MAX(CASE WHEN e.type = 'scan_completed' AND e.suggestion_applied THEN 1 ELSE 0 END) AS applied
FROM events e JOIN started s ON s.user_id = e.user_id
WHERE e.occurred_us >= s.start_us - ? AND e.occurred_us < ?
GROUP BY e.user_id, e.session_id, CASE WHEN e.occurred_us >= s.start_us THEN 1 ELSE 0 END"""  # noqa: S608

# Parameters: the four of _STARTS, then until.
_PREDICTION_ERRORS: Final = f"""WITH {_STARTS}
SELECT e.user_id, COUNT(*), SUM(ABS(p.result_count - e.result_count))
FROM events e JOIN started s ON s.user_id = e.user_id
    JOIN predictions p ON p.prediction_id = e.prediction_id
WHERE e.type = 'scan_completed' AND p.result_count IS NOT NULL
    AND e.occurred_us >= s.start_us AND e.occurred_us < ?
GROUP BY e.user_id"""  # noqa: S608

# Parameters: the four of _STARTS, then until.
_RATINGS: Final = f"""WITH {_STARTS},
rated AS (
    SELECT prediction_id, MIN(user_id) AS user_id, MIN(occurred_us) AS t
    FROM events WHERE type = 'scan_completed' AND prediction_id IS NOT NULL
    GROUP BY prediction_id),
ratings AS (
    SELECT COALESCE(p.user_id, r.user_id, f.user_id) AS user_id,
        COALESCE(r.t, f.received_us) AS t, f.satisfaction
    FROM feedback f LEFT JOIN predictions p ON p.prediction_id = f.prediction_id
        LEFT JOIN rated r ON r.prediction_id = f.prediction_id)
SELECT g.user_id, COUNT(*), SUM(g.satisfaction)
FROM ratings g JOIN started s ON s.user_id = g.user_id
WHERE g.t >= s.start_us AND g.t < ?
GROUP BY g.user_id"""  # noqa: S608


class ExperimentMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Every exposed user's sums, and the span of the experiment's data."""

    experiment: str
    users: list[UserMetrics]
    first_start: datetime | None  # the earliest user start (None: nobody exposed yet)
    last_activity: datetime | None  # the latest event of the period


class _Sums:
    """Running sums of one user in one period."""

    __slots__ = (
        "applied",
        "empty",
        "in_range",
        "last_us",
        "scans",
        "sessions",
        "time_s",
        "ttfr_n",
        "ttfr_s",
    )

    def __init__(self) -> None:
        self.sessions = self.scans = self.empty = self.in_range = self.ttfr_n = 0
        self.time_s = self.ttfr_s = 0.0
        self.applied = False
        self.last_us = 0

    def add(self, row: tuple[Any, ...]) -> None:
        first_start, last_us, first_result, scans, empty, in_range, applied = row
        self.sessions += 1
        self.scans += int(scans or 0)
        self.empty += int(empty or 0)
        self.in_range += int(in_range or 0)
        self.applied = self.applied or bool(applied)
        self.last_us = max(self.last_us, int(last_us))
        if first_start is None:
            return  # only first_result events: no scan start to time the session from
        start = float(first_start)
        self.time_s += max(0.0, (int(last_us) - start) / 1e6)
        if first_result is not None:
            self.ttfr_n += 1
            self.ttfr_s += max(0.0, (int(first_result) - start) / 1e6)


def _by_user(rows: Iterable[tuple[Any, ...]]) -> dict[str, tuple[int, float]]:
    return {str(u): (int(n), float(total or 0.0)) for u, n, total in rows}


def select_experiment_metrics(
    db: Db,
    experiment: str,
    *,
    until: datetime | None = None,
    pre_window: timedelta = DEFAULT_PRE_WINDOW,
) -> ExperimentMetrics:
    """Each user exposed to `experiment` before `until`, with their sums (see module doc)."""
    until_us = _NEVER if until is None else to_us(until)
    starts_params = (experiment, until_us, experiment, until_us)
    users = db.rows(_USERS, starts_params)
    if not users:
        return ExperimentMetrics(
            experiment=experiment, users=[], first_start=None, last_activity=None
        )
    post: dict[str, _Sums] = {}
    pre: dict[str, _Sums] = {}
    window_us = pre_window // timedelta(microseconds=1)
    for row in db.rows(_SESSIONS, (*starts_params, window_us, until_us)):
        user, _session, in_period = str(row[0]), row[1], int(row[2])
        (post if in_period else pre).setdefault(user, _Sums()).add(row[3:])
    errors = _by_user(db.rows(_PREDICTION_ERRORS, (*starts_params, until_us)))
    ratings = _by_user(db.rows(_RATINGS, (*starts_params, until_us)))

    metrics = []
    for user_id, arm, start_us in users:
        uid = str(user_id)
        now, before = post.get(uid, _Sums()), pre.get(uid)
        n_pred, error = errors.get(uid, (0, 0.0))
        n_rated, rated = ratings.get(uid, (0, 0.0))
        start_day = int(start_us) // _DAY_US
        metrics.append(
            UserMetrics(
                user_id=uid,
                arm=str(arm),
                n_sessions=now.sessions,
                n_scans=now.scans,
                n_empty_scans=now.empty,
                total_scan_time_s=now.time_s,
                n_time_to_first_result=now.ttfr_n,
                time_to_first_result_s_sum=now.ttfr_s,
                n_scans_in_desired_range=now.in_range,
                n_predictions=n_pred,
                prediction_abs_error_sum=error,
                n_satisfaction=n_rated,
                satisfaction_sum=rated,
                returned=now.sessions > 0 and now.last_us // _DAY_US > start_day,
                adopted_suggestion=now.applied,
                pre_n_sessions=None if before is None else before.sessions,
                pre_n_scans=None if before is None else before.scans,
                pre_n_empty_scans=None if before is None else before.empty,
                pre_total_scan_time_s=None if before is None else before.time_s,
            )
        )
    last = max((s.last_us for s in post.values() if s.sessions), default=None)
    return ExperimentMetrics(
        experiment=experiment,
        users=metrics,
        first_start=from_us(min(int(u[2]) for u in users)),
        last_activity=None if last is None else from_us(last),
    )
