"""The store side of shadow scoring: champion and shadow on the same labelled requests.

A shadow row (`predictions.shadow_of` set) refers to the served prediction it shadows. The
paired join is shadow row -> served row (`shadow_of` = the served `prediction_id`) -> the
served prediction's `scan_completed` events, so every pair is one real outcome scored by
both versions. `select_shadow_sums` returns, per (champion version, shadow version), the
sufficient statistics of both versions' accuracy on those pairs and of the per-pair
difference in absolute error (shadow minus champion), summed in SQL on either backend:
n, the sum and the sum of squares are all a mean and its standard error need. Like the
online accuracy, each `scan_completed` event of a prediction is one outcome, windowed by
when the server received it.
"""

from __future__ import annotations

from typing import Final

import msgspec

from server.store.sql import Db

__all__ = ["ShadowSums", "select_shadow_sums"]


class ShadowSums(msgspec.Struct, frozen=True, kw_only=True):
    """Paired sums of one champion and one shadow version over labelled requests.

    `*_diff` and `*_diff_sq` are sums of d and d^2 with d = |y - shadow| - |y - champion|
    per pair: negative means the shadow was closer.
    """

    champion: str
    shadow: str
    n: int
    champion_count_abs_err: float
    shadow_count_abs_err: float
    count_diff: float
    count_diff_sq: float
    champion_duration_abs_err: float
    shadow_duration_abs_err: float
    duration_diff: float
    duration_diff_sq: float
    champion_count_covered: int
    shadow_count_covered: int
    champion_duration_covered: int
    shadow_duration_covered: int
    champion_brier_sum: float
    shadow_brier_sum: float


def _abs(version: str, target: str) -> str:
    return f"ABS(e.{target} - {version}.{target})"


def _diff(target: str) -> str:
    return f"({_abs('s', target)} - {_abs('p', target)})"


def _covered(version: str, target: str) -> str:
    return (
        f"SUM(CASE WHEN e.{target} >= {version}.{target}_lo AND e.{target} <= "
        f"{version}.{target}_hi THEN 1 ELSE 0 END)"
    )


def _brier(version: str) -> str:
    empty = "(CASE WHEN e.result_count = 0 THEN 1.0 ELSE 0.0 END)"
    return f"SUM(({version}.p_empty - {empty}) * ({version}.p_empty - {empty}))"


# Built from constants only (column names); every value is a parameter.
_SELECT: Final = f"""SELECT p.model_version, s.model_version, COUNT(*),
    SUM({_abs("p", "result_count")}), SUM({_abs("s", "result_count")}),
    SUM({_diff("result_count")}), SUM({_diff("result_count")} * {_diff("result_count")}),
    SUM({_abs("p", "duration_s")}), SUM({_abs("s", "duration_s")}),
    SUM({_diff("duration_s")}), SUM({_diff("duration_s")} * {_diff("duration_s")}),
    {_covered("p", "result_count")}, {_covered("s", "result_count")},
    {_covered("p", "duration_s")}, {_covered("s", "duration_s")},
    {_brier("p")}, {_brier("s")}
FROM predictions s
JOIN predictions p ON p.prediction_id = s.shadow_of
JOIN events e ON e.prediction_id = p.prediction_id
WHERE s.shadow_of IS NOT NULL AND e.type = 'scan_completed'
    AND e.received_us >= ? AND e.received_us < ?
    AND p.model_version IS NOT NULL AND p.result_count IS NOT NULL
    AND s.result_count IS NOT NULL"""  # noqa: S608
_GROUP: Final = " GROUP BY p.model_version, s.model_version ORDER BY 1, 2"


def select_shadow_sums(
    db: Db, since_us: int, until_us: int, shadow: str | None = None
) -> list[ShadowSums]:
    """Paired sums per (champion, shadow) over outcomes received in [since, until)."""
    where = " AND s.model_version = ?" if shadow else ""
    params: tuple[object, ...] = (since_us, until_us) + ((shadow,) if shadow else ())
    out = []
    for champion, shadow_version, n, *values in db.rows(_SELECT + where + _GROUP, params):
        f = [float(v) for v in values]
        out.append(
            ShadowSums(
                champion=str(champion),
                shadow=str(shadow_version),
                n=int(n),
                champion_count_abs_err=f[0],
                shadow_count_abs_err=f[1],
                count_diff=f[2],
                count_diff_sq=f[3],
                champion_duration_abs_err=f[4],
                shadow_duration_abs_err=f[5],
                duration_diff=f[6],
                duration_diff_sq=f[7],
                champion_count_covered=int(f[8]),
                shadow_count_covered=int(f[9]),
                champion_duration_covered=int(f[10]),
                shadow_duration_covered=int(f[11]),
                champion_brier_sum=f[12],
                shadow_brier_sum=f[13],
            )
        )
    return out
