"""Business figures per arm from scan events and feedback: the monitoring and adoption view.

Per arm (the arm the scanner echoed on its events; feedback takes the arm of the
prediction it rates), over events whose `time_column` falls in [since, until):
`received_us` for rolling monitoring windows (server clock: what arrived in the last
hour), `occurred_us` for an experiment's adoption checklist (when it happened). Feedback
is always windowed by its arrival. Definitions (also on `ArmBusiness`):

- empty_rate: empty completed scans / completed scans;
- first_result_s: mean elapsed_s of first_result events;
- satisfaction: mean rating; positive_share: ratings >= 4 / ratings;
- adoption: users who applied at least one suggestion / users with a completed scan;
- regular_usage: users who applied suggestions on at least 2 distinct UTC days / users
  with a completed scan.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from server.domain.scan import WireStruct
from server.store.sql import Db

__all__ = ["ArmBusiness", "TimeColumn", "business_by_arm"]

TimeColumn = Literal["received_us", "occurred_us"]
_DAY_US: Final = 86_400_000_000

# {t} is one of the TimeColumn constants, never input; values are parameters.
_SCANS: Final = """SELECT COALESCE(arm, 'none'), COUNT(DISTINCT user_id),
    SUM(CASE WHEN type = 'scan_completed' THEN 1 ELSE 0 END),
    SUM(CASE WHEN type = 'scan_completed' AND result_count = 0 THEN 1 ELSE 0 END),
    AVG(CASE WHEN type = 'first_result' THEN elapsed_s END)
FROM events WHERE {t} >= ? AND {t} < ? GROUP BY 1"""

_USERS: Final = f"""SELECT grp, COUNT(*), SUM(CASE WHEN days >= 1 THEN 1 ELSE 0 END),
    SUM(CASE WHEN days >= 2 THEN 1 ELSE 0 END)
FROM (SELECT COALESCE(arm, 'none') AS grp, user_id,
        COUNT(DISTINCT CASE WHEN suggestion_applied THEN occurred_us / {_DAY_US} END) AS days
    FROM events WHERE type = 'scan_completed' AND {{t}} >= ? AND {{t}} < ?
    GROUP BY 1, 2) per_user
GROUP BY grp"""  # noqa: S608 - constants only

_FEEDBACK: Final = """SELECT COALESCE(p.arm, 'none'), COUNT(*), AVG(f.satisfaction),
    SUM(CASE WHEN f.satisfaction >= 4 THEN 1 ELSE 0 END)
FROM feedback f LEFT JOIN predictions p ON p.prediction_id = f.prediction_id
WHERE f.received_us >= ? AND f.received_us < ? GROUP BY 1"""


def _doc(text: str) -> msgspec.Meta:
    """A field's description (meaning and unit), for the OpenAPI document."""
    return msgspec.Meta(description=text)


class ArmBusiness(WireStruct, frozen=True):
    """Business figures of one arm over the window (null when nothing to divide by).

    - empty_rate: empty completed scans over completed scans.
    - first_result_s: mean seconds from scan start to the first result.
    - satisfaction: mean satisfaction rating (1-5); positive_share: ratings >= 4.
    - adoption: users who applied at least one suggestion over users of the arm.
    - regular_usage: users active on >= 2 distinct days over users of the arm.
    """

    arm: Annotated[str, _doc("the A/B arm the scanner echoed (none for events without an arm)")]
    users: Annotated[int, _doc("users with an event in the window, count")]
    scans_completed: Annotated[int, _doc("completed scans, count")]
    # Users with a completed scan: the denominator of adoption and regular_usage.
    active_users: Annotated[int, _doc("users with a completed scan, count")] = 0
    empty_rate: Annotated[
        float | None, _doc("empty completed scans over completed scans, share 0-1")
    ] = None
    first_result_s: Annotated[
        float | None, _doc("mean time from scan start to the first result, seconds")
    ] = None
    feedback: Annotated[int, _doc("feedback received, count")] = 0
    satisfaction: Annotated[float | None, _doc("mean satisfaction rating, rating points 1-5")] = (
        None
    )
    positive_share: Annotated[float | None, _doc("ratings of 4 or 5 over ratings, share 0-1")] = (
        None
    )
    adoption: Annotated[
        float | None, _doc("users who applied a suggestion over active users, share 0-1")
    ] = None
    regular_usage: Annotated[
        float | None,
        _doc("users applying suggestions on two or more UTC days over active users, share 0-1"),
    ] = None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def business_by_arm(
    db: Db, since_us: int, until_us: int, time_column: TimeColumn = "received_us"
) -> list[ArmBusiness]:
    """The figures of every arm seen in the window, sorted by arm."""
    window = (since_us, until_us)
    scans = {str(r[0]): r[1:] for r in db.rows(_SCANS.format(t=time_column), window)}
    users = {str(r[0]): r[1:] for r in db.rows(_USERS.format(t=time_column), window)}
    feedback = {str(r[0]): r[1:] for r in db.rows(_FEEDBACK, window)}
    out = []
    for arm in sorted(set(scans) | set(feedback)):
        n_users, completed, empty, first = scans.get(arm, (0, 0, 0, None))
        scanners, adopting, regular = (int(v or 0) for v in users.get(arm, (0, 0, 0)))
        rated, mean_rating, positive = feedback.get(arm, (0, None, 0))
        out.append(
            ArmBusiness(
                arm=arm,
                users=int(n_users or 0),
                scans_completed=int(completed or 0),
                active_users=scanners,
                empty_rate=_share(int(empty or 0), int(completed or 0)),
                first_result_s=None if first is None else float(first),
                feedback=int(rated or 0),
                satisfaction=None if mean_rating is None else float(mean_rating),
                positive_share=_share(int(positive or 0), int(rated or 0)),
                adoption=_share(adopting, scanners),
                regular_usage=_share(regular, scanners),
            )
        )
    return out
