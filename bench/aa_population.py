"""A simulated user population with no treatment effect, for the A/A validation.

Users are as uneven as real scanner users, which is what breaks naive statistics: each
has their own activity, retry habit, empty-scan propensity, pace and taste, so scans of
one user are correlated and heavy users dominate per-scan ratios.

    enrol on a day in [0, n_days); later days active with p_active ~ Beta(2, 3)
    sessions per active day  1 + Poisson(lam),   lam ~ Gamma(1, 0.5)
    scans per day            sessions + Poisson(retry x sessions),  retry ~ Gamma(2, 0.75)
    empty scans              Binomial(scans, p_empty),  p_empty ~ Beta(3, 5)
    scans in desired range   Binomial(non-empty scans, q),  q ~ Beta(4, 4)
    seconds per scan         lognormal(mu, 0.7),  mu ~ N(ln 60, 0.4)   (set-up plus run)
    time to first result     per session that got one, lognormal(mu - ln(1 - p_empty), 0.8)
    prediction |error|       per scan lognormal(N(ln 8, 0.5), 1.0)
    satisfaction             35% of sessions rate 1-5: round(N(s, 0.9)), s ~ N(3.4, 0.7)
    suggestion adopted       Binomial(sessions, a),  a ~ Beta(0.5, 6)
    pre-experiment history   70% of users: 14 days of the same behaviour

Everything is drawn per user-day, so `columns_at(look)` gives the cumulative sums a report
on that day would see.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from server.analysis.moments import BoolArray, FloatArray
from server.analysis.user_metrics import UserColumns
from server.store.records import UserMetrics

__all__ = [
    "Population",
    "PopulationSpec",
    "columns_at",
    "exposed_at",
    "simulate_population",
    "users_at",
]

IntArray = npt.NDArray[np.int64]

# UserColumns fields drawn per user-day (the others are derived or pre-experiment).
_DAILY = (
    "n_sessions",
    "n_scans",
    "n_empty_scans",
    "total_scan_time_s",
    "n_time_to_first_result",
    "time_to_first_result_s_sum",
    "n_scans_in_desired_range",
    "n_predictions",
    "prediction_abs_error_sum",
    "n_satisfaction",
    "satisfaction_sum",
    "n_adopted",
)
_PRE = ("pre_n_sessions", "pre_n_scans", "pre_n_empty_scans", "pre_total_scan_time_s")


class PopulationSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Size and seed of the simulated population."""

    n_users: int = 10_000
    n_days: int = 14
    seed: int = 20_261_126
    history_share: float = 0.7  # users with pre-experiment scans (for CUPED)

    def __post_init__(self) -> None:
        if self.n_users < 4 or self.n_days < 1:
            raise ValueError(
                f"need at least 4 users and 1 day, got {self.n_users} users, {self.n_days} days"
            )


class Population(msgspec.Struct, frozen=True, kw_only=True):
    """Per user-day cumulative sums (users x days) and per-user pre-experiment sums."""

    cumulative: dict[str, FloatArray]
    pre: dict[str, FloatArray]
    active_days: FloatArray  # cumulative count of active days, users x days

    @property
    def n_users(self) -> int:
        return int(self.active_days.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.active_days.shape[1])


def _sum_lognormal(
    rng: np.random.Generator, counts: IntArray, mu: FloatArray, sigma: float
) -> FloatArray:
    """Per cell, the sum of `counts` lognormal draws; mu is per user (first axis)."""
    flat = counts.ravel()
    cell = np.repeat(np.arange(flat.size), flat)
    per_cell_mu = np.broadcast_to(mu.reshape(-1, *([1] * (counts.ndim - 1))), counts.shape)
    draws = rng.lognormal(per_cell_mu.ravel()[cell], sigma)
    sums = np.bincount(cell, weights=draws, minlength=flat.size)
    return np.asarray(sums, dtype=np.float64).reshape(counts.shape)


def _sum_ratings(rng: np.random.Generator, counts: IntArray, centre: FloatArray) -> FloatArray:
    flat = counts.ravel()
    cell = np.repeat(np.arange(flat.size), flat)
    per_cell = np.broadcast_to(centre[:, None], counts.shape).ravel()[cell]
    ratings = np.clip(np.rint(rng.normal(per_cell, 0.9)), 1.0, 5.0)
    sums = np.bincount(cell, weights=ratings, minlength=flat.size)
    return np.asarray(sums, dtype=np.float64).reshape(counts.shape)


def simulate_population(spec: PopulationSpec) -> Population:
    """Draw the population; the same spec always gives the same users."""
    rng = np.random.default_rng(spec.seed)
    n, days = spec.n_users, spec.n_days
    day = np.arange(days)[None, :]
    enrol = rng.integers(0, days, n)[:, None]
    p_active = rng.beta(2.0, 3.0, n)
    active = (day == enrol) | ((day > enrol) & (rng.random((n, days)) < p_active[:, None]))
    lam = rng.gamma(1.0, 0.5, n)
    sessions = active * (1 + rng.poisson(lam[:, None], (n, days)))
    retry = rng.gamma(2.0, 0.75, n)
    scans = sessions + rng.poisson(retry[:, None] * sessions)
    p_empty = rng.beta(3.0, 5.0, n)
    empties = rng.binomial(scans, p_empty[:, None])
    in_range = rng.binomial(scans - empties, rng.beta(4.0, 4.0, n)[:, None])
    mu_time = rng.normal(np.log(60.0), 0.4, n)
    with_result = rng.binomial(sessions, 1.0 - p_empty[:, None] ** 3)
    n_rated = rng.binomial(sessions, 0.35)
    daily = {
        "n_sessions": sessions,
        "n_scans": scans,
        "n_empty_scans": empties,
        "total_scan_time_s": _sum_lognormal(rng, scans, mu_time, 0.7),
        "n_time_to_first_result": with_result,
        "time_to_first_result_s_sum": _sum_lognormal(
            rng, with_result, mu_time - np.log1p(-p_empty), 0.8
        ),
        "n_scans_in_desired_range": in_range,
        "n_predictions": scans,
        "prediction_abs_error_sum": _sum_lognormal(
            rng, scans, rng.normal(np.log(8.0), 0.5, n), 1.0
        ),
        "n_satisfaction": n_rated,
        "satisfaction_sum": _sum_ratings(rng, n_rated, rng.normal(3.4, 0.7, n)),
        "n_adopted": rng.binomial(sessions, rng.beta(0.5, 6.0, n)[:, None]),
    }
    has_history = rng.random(n) < spec.history_share
    pre_sessions = rng.poisson(days * p_active * (1.0 + lam)) * has_history
    pre_scans = pre_sessions + rng.poisson(retry * pre_sessions)
    pre = {
        "pre_n_sessions": pre_sessions,
        "pre_n_scans": pre_scans,
        "pre_n_empty_scans": rng.binomial(pre_scans, p_empty),
        "pre_total_scan_time_s": _sum_lognormal(rng, pre_scans, mu_time, 0.7),
    }
    missing = np.where(has_history, 1.0, np.nan)  # no history is None, not zero
    return Population(
        cumulative={k: np.cumsum(v, axis=1, dtype=np.float64) for k, v in daily.items()},
        pre={k: np.asarray(v, dtype=np.float64) * missing for k, v in pre.items()},
        active_days=np.cumsum(active, axis=1, dtype=np.float64),
    )


def _check_look(pop: Population, look: int) -> None:
    if not 0 <= look < pop.n_days:
        raise ValueError(f"look must be a day in [0, {pop.n_days}), got {look}")


def exposed_at(pop: Population, look: int) -> BoolArray:
    """Users enrolled by the end of day `look` (0-based)."""
    _check_look(pop, look)
    return np.asarray(pop.active_days[:, look] > 0, dtype=np.bool_)


def columns_at(pop: Population, look: int) -> UserColumns:
    """Every user's sums through day `look`; users not yet enrolled have zeros."""
    _check_look(pop, look)
    at = {k: v[:, look] for k, v in pop.cumulative.items() if k != "n_adopted"}
    return UserColumns(
        **at,
        **pop.pre,
        returned=(pop.active_days[:, look] >= 2).astype(np.float64),
        adopted_suggestion=(pop.cumulative["n_adopted"][:, look] > 0).astype(np.float64),
    )


def users_at(pop: Population, look: int, labels: Sequence[str]) -> list[UserMetrics]:
    """The enrolled users as UserMetrics structs; labels[i] is user i's arm."""
    if len(labels) != pop.n_users:
        raise ValueError(f"need one arm label per user ({pop.n_users}), got {len(labels)}")
    cols = columns_at(pop, look)
    out = []
    for i in np.flatnonzero(exposed_at(pop, look)):
        values: dict[str, object] = {"user_id": f"u{i}", "arm": labels[int(i)]}
        for name in UserColumns.__struct_fields__:
            value = float(cols.column(name)[i])
            if name in ("returned", "adopted_suggestion"):
                values[name] = value > 0.0
            elif np.isnan(value):
                values[name] = None
            elif name.startswith(("n_", "pre_n_")):
                values[name] = round(value)
            else:
                values[name] = value
        out.append(msgspec.convert(values, UserMetrics))
    return out
