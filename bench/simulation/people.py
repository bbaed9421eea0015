"""Simulated scanner users: what they want, how they set scans, and how they change them.

Each person wants a result list of a certain size (a desired range such as 5-50) and starts
a session from one of their usual scans, drawn from the same habits as the training history
(train.habits). People are often too strict on a first attempt: with their personal
strictness they switch on or raise a filter or two beyond their usual scan.

When a scan comes back empty or short, a person without help loosens one filter that is
on, picked at random: people do not know which filter binds, so the change often does
little. Too many results and they tighten one at random. Treatment users see the service's
prediction and suggestions; they accept the best suggestion with their personal
acceptance probability and otherwise may heed a bad prediction and adjust before running.

Every behaviour parameter is a named constant here, so the README can state the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import msgspec
import numpy as np

from server.domain.scan import Scan

__all__ = [
    "ACCEPT_BETA",
    "APPLY_S",
    "DESIRED_RANGES",
    "ENGAGEMENT_BETA",
    "HEED_BAD_PREDICTION",
    "MAX_TRIES",
    "RETUNE_S",
    "Person",
    "draw_people",
    "loosen",
    "overtighten",
    "tighten",
]

# (low, high, weight): the result counts people want from a scan.
DESIRED_RANGES: Final = ((5, 50, 0.35), (1, 20, 0.2), (10, 100, 0.2), (3, 30, 0.25))
STRICTNESS_BETA: Final = (2.0, 2.0)  # share of first attempts made too strict, per person
ACCEPT_BETA: Final = (6.0, 3.0)  # chance to accept a shown suggestion (mean 0.67)
ENGAGEMENT_BETA: Final = (2.0, 4.0)  # chance to come back on a later day (mean 0.33)
HEED_BAD_PREDICTION: Final = 0.5  # adjusts before running when told it will be empty
MAX_TRIES: Final = (3, 6)  # scans a person runs before giving up, inclusive range
RETUNE_S: Final = (45.0, 120.0)  # seconds to change parameters by hand between scans
APPLY_S: Final = (5.0, 15.0)  # seconds to read and apply a suggestion
USUAL_SCANS: Final = 3  # a person's repertoire of scans


class Person(msgspec.Struct, frozen=True, kw_only=True):
    """One simulated user's traits; `scans` are their usual scans (no identity, no time)."""

    index: int
    user_id: str
    desired: tuple[int, int]
    strictness: float
    accept: float
    engagement: float
    max_tries: int
    scans: tuple[Scan, ...]
    first_day: int  # experiment day of the first session
    pre_days: tuple[int, ...]  # days before the experiment (negative) with a session


def draw_people(
    n: int,
    rng: np.random.Generator,
    pool: Sequence[Scan],
    *,
    days: int,
    pre_days: int,
    pre_share: float,
    run_tag: str,
) -> list[Person]:
    """`n` people with their traits; scans come from `pool` (people's habits)."""
    if days < 1 or n < 1:
        raise ValueError(f"need at least one user and one day, got users={n}, days={days}")
    weights = np.asarray([w for *_, w in DESIRED_RANGES])
    people = []
    for i in range(n):
        low, high, _ = DESIRED_RANGES[rng.choice(len(DESIRED_RANGES), p=weights / weights.sum())]
        first = int(rng.integers(0, days))
        pre: tuple[int, ...] = ()
        if pre_days > 0 and rng.random() < pre_share:
            k = min(pre_days, 1 + int(rng.poisson(1.5)))
            pre = tuple(sorted(-1 - rng.choice(pre_days, size=k, replace=False)))
        people.append(
            Person(
                index=i,
                user_id=f"sim-{run_tag}-{i:05d}",
                desired=(low, high),
                strictness=float(rng.beta(*STRICTNESS_BETA)),
                accept=float(rng.beta(*ACCEPT_BETA)),
                engagement=float(rng.beta(*ENGAGEMENT_BETA)),
                max_tries=int(rng.integers(MAX_TRIES[0], MAX_TRIES[1] + 1)),
                scans=tuple(pool[j] for j in rng.choice(len(pool), size=USUAL_SCANS)),
                first_day=first,
                pre_days=tuple(int(d) for d in pre),
            )
        )
    return people


# --- changing a scan ------------------------------------------------------------------------

Step = Callable[[Scan, np.random.Generator], dict[str, object]]


def _is_on(scan: Scan) -> dict[str, bool]:
    return {
        "price": scan.min_price > 0.0 or scan.max_price < 100_000.0,
        "volume": scan.min_avg_volume > 0.0,
        "cap": scan.min_market_cap_musd > 0.0,
        "move": scan.min_abs_change_pct > 0.0,
        "relvol": scan.min_relative_volume > 0.0,
        "rsi": scan.rsi_min > 0.0 or scan.rsi_max < 100.0,
        "extra": scan.n_extra_filters > 0,
    }


def _halve(value: float, floor: float) -> float:
    return 0.0 if value / 2.0 < floor else round(value / 2.0, 4)


_LOOSEN: Final[dict[str, Step]] = {
    "price": lambda s, r: {
        "min_price": round(s.min_price / 2.0, 4),
        "max_price": min(s.max_price * 2.0, 1_000_000.0),
    },
    "volume": lambda s, r: {"min_avg_volume": round(s.min_avg_volume / 3.0, -2)},
    "cap": lambda s, r: {"min_market_cap_musd": round(s.min_market_cap_musd / 3.0, 1)},
    "move": lambda s, r: {"min_abs_change_pct": _halve(s.min_abs_change_pct, 0.25)},
    "relvol": lambda s, r: {"min_relative_volume": _halve(s.min_relative_volume, 0.6)},
    "rsi": lambda s, r: {
        "rsi_min": max(0.0, s.rsi_min - 10),
        "rsi_max": min(100.0, s.rsi_max + 10),
    },
    "extra": lambda s, r: {"n_extra_filters": max(0, s.n_extra_filters - int(r.integers(1, 3)))},
}

_TIGHTEN: Final[dict[str, Step]] = {
    "volume": lambda s, r: {"min_avg_volume": max(s.min_avg_volume * 3.0, 300_000.0)},
    "cap": lambda s, r: {"min_market_cap_musd": max(s.min_market_cap_musd * 3.0, 300.0)},
    "move": lambda s, r: {"min_abs_change_pct": min(50.0, max(s.min_abs_change_pct * 2, 1.0))},
    "relvol": lambda s, r: {
        "min_relative_volume": min(20.0, max(s.min_relative_volume * 1.5, 1.2))
    },
    "extra": lambda s, r: {"n_extra_filters": min(20, s.n_extra_filters + 1)},
}

# What a person raises when they are too strict on a first attempt: round, ambitious values.
_OVERTIGHTEN: Final[dict[str, Step]] = {
    "move": lambda s, r: {
        "min_abs_change_pct": max(s.min_abs_change_pct, float(r.choice([3.0, 5.0, 8.0])))
    },
    "relvol": lambda s, r: {
        "min_relative_volume": max(s.min_relative_volume, float(r.choice([2.0, 3.0])))
    },
    "extra": lambda s, r: {"n_extra_filters": min(20, s.n_extra_filters + int(r.integers(1, 4)))},
    "volume": lambda s, r: {
        "min_avg_volume": max(s.min_avg_volume, float(r.choice([1e6, 2e6, 5e6])))
    },
    "cap": lambda s, r: {
        "min_market_cap_musd": max(s.min_market_cap_musd, float(r.choice([1e3, 1e4])))
    },
}


def _apply(
    scan: Scan, steps: dict[str, Step], names: Sequence[str], rng: np.random.Generator
) -> Scan:
    if not names:
        return scan
    name = names[int(rng.integers(0, len(names)))]
    return msgspec.structs.replace(scan, **steps[name](scan, rng))


def loosen(scan: Scan, rng: np.random.Generator) -> Scan:
    """One filter that is on, picked at random, loosened (a person does not know which binds)."""
    on = _is_on(scan)
    return _apply(scan, _LOOSEN, [name for name in _LOOSEN if on[name]], rng)


def tighten(scan: Scan, rng: np.random.Generator) -> Scan:
    """One filter, picked at random, tightened (too many results)."""
    return _apply(scan, _TIGHTEN, list(_TIGHTEN), rng)


def overtighten(scan: Scan, rng: np.random.Generator) -> Scan:
    """A too-strict first attempt: one or two filters raised to ambitious round values."""
    for _ in range(int(rng.integers(1, 3))):
        scan = _apply(scan, _OVERTIGHTEN, list(_OVERTIGHTEN), rng)
    return scan
