"""Usage analytics from scan events: adoption, scans per session, return rate, drop-off.

Four aggregate queries per grouping (everyone, then per arm), each pushed down to the
database so the cost does not grow with rows shipped to Python. Windows are by the events'
own timestamps, so late or out-of-order events land where they happened. Definitions are
on `Usage`.

"Return rate" means one thing here and in the experiment report: the share of users who
came back on a later UTC day than the first day they were seen (here, the first day with
an event in the window; in the report, the day of their first exposure). A second session
on the same day is not a return.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from server.store.records import DropOff, Usage, UsageReport
from server.store.sql import Db, to_us

__all__ = ["usage_report"]

_EVERYONE: Final = "'all'"
_BY_ARM: Final = "COALESCE(arm, 'none')"
_WINDOW: Final = "occurred_us >= ? AND occurred_us < ?"

# {g} is one of the two constants above and {window} is _WINDOW: never user input.
_TOTALS: Final = """SELECT {g} AS grp, COUNT(DISTINCT session_id), COUNT(DISTINCT user_id),
    SUM(CASE WHEN type = 'scan_completed' THEN 1 ELSE 0 END),
    SUM(CASE WHEN type = 'scan_completed' AND result_count = 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN suggestion_shown THEN 1 ELSE 0 END),
    SUM(CASE WHEN suggestion_applied THEN 1 ELSE 0 END)
FROM events WHERE {window} GROUP BY 1"""

# occurred_us is a BIGINT on both backends, so / is integer division: dividing by the
# 86,400,000,000 microseconds of a day gives the UTC day number.
_RETURNING: Final = """SELECT grp, SUM(CASE WHEN last_day > first_day THEN 1 ELSE 0 END) FROM (
    SELECT {g} AS grp, user_id,
        MIN(occurred_us / 86400000000) AS first_day, MAX(occurred_us / 86400000000) AS last_day
    FROM events WHERE {window} GROUP BY 1, 2) per_user
GROUP BY grp"""

_ADOPTION: Final = """SELECT grp, COUNT(*), SUM(applied) FROM (
    SELECT {g} AS grp, user_id, MAX(CASE WHEN suggestion_applied THEN 1 ELSE 0 END) AS applied
    FROM events WHERE type = 'scan_completed' AND suggestion_shown AND {window}
    GROUP BY 1, 2) per_user
GROUP BY grp"""

_DROP_OFF: Final = """WITH ranked AS (
    SELECT {g} AS grp, result_count,
        ROW_NUMBER() OVER (PARTITION BY {g}, session_id
                           ORDER BY occurred_us DESC, event_id DESC) AS rn,
        SUM(CASE WHEN result_count = 0 THEN 1 ELSE 0 END)
            OVER (PARTITION BY {g}, session_id) AS empties
    FROM events WHERE type = 'scan_completed' AND {window})
SELECT grp, SUM(CASE WHEN empties > 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN result_count = 0 THEN 1 ELSE 0 END)
FROM ranked WHERE rn = 1 GROUP BY grp"""


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _usage_by(db: Db, group: str, window: tuple[int, int]) -> dict[str, Usage]:
    def query(sql: str) -> dict[str, tuple[int, ...]]:
        rows = db.rows(sql.format(g=group, window=_WINDOW), window)
        return {str(row[0]): tuple(int(v or 0) for v in row[1:]) for row in rows}

    returning = query(_RETURNING)
    adoption = query(_ADOPTION)
    drop_off = query(_DROP_OFF)
    usage = {}
    for grp, (sessions, users, completed, empty, shown, applied) in query(_TOTALS).items():
        (n_returning,) = returning.get(grp, (0,))
        users_shown, users_adopting = adoption.get(grp, (0, 0))
        with_empty, ending_empty = drop_off.get(grp, (0, 0))
        usage[grp] = Usage(
            users=users,
            sessions=sessions,
            scans_completed=completed,
            empty_scans=empty,
            scans_per_session=_ratio(completed, sessions),
            suggestions_shown=shown,
            suggestions_applied=applied,
            suggestion_apply_rate=_ratio(applied, shown),
            users_shown_suggestion=users_shown,
            users_adopting=users_adopting,
            adoption=_ratio(users_adopting, users_shown),
            returning_users=n_returning,
            return_rate=_ratio(n_returning, users),
            drop_off=DropOff(
                sessions_with_empty_scan=with_empty,
                sessions_ending_empty=ending_empty,
                rate=_ratio(ending_empty, with_empty),
            ),
        )
    return usage


_NOTHING: Final = Usage(
    users=0,
    sessions=0,
    scans_completed=0,
    empty_scans=0,
    scans_per_session=None,
    suggestions_shown=0,
    suggestions_applied=0,
    suggestion_apply_rate=None,
    users_shown_suggestion=0,
    users_adopting=0,
    adoption=None,
    returning_users=0,
    return_rate=None,
    drop_off=DropOff(sessions_with_empty_scan=0, sessions_ending_empty=0, rate=None),
)


def usage_report(db: Db, since: datetime, until: datetime) -> UsageReport:
    """Usage over events that happened in [since, until), overall and per arm."""
    window = (to_us(since), to_us(until))
    overall = _usage_by(db, _EVERYONE, window).get("all", _NOTHING)
    return UsageReport(
        since=since, until=until, overall=overall, by_arm=_usage_by(db, _BY_ARM, window)
    )
