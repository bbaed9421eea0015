"""How people set scans: the parameter distribution of simulated scan history.

People do not draw scan parameters uniformly. A scanner's filters are toggles: a scan
switches on a handful of them (price band and volume floor most often, the move filter for
gap hunters, relative volume for volume spikes, the RSI band for mean reversion; more of
them the bigger the universe) and sets each to a round preset (price 5-500, volume over
1M, RSI 30-70), with move filters often too strict. A scan that would return a list too
long to read gets narrowed; one that returns nothing is not (that is what scanopt warns
about). Users keep a few saved scans and re-run them at all hours; the rest is ad hoc.
Scans happen mostly on weekdays in market hours, most of all right after the open;
whole-market scans are mostly daily. The market regime (a VIX-like index) is one path
over the year that every scan of a day shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from server.domain.features import MARKET_TZ, session_clock
from server.domain.scan import Scan, Strategy, Timeframe, Universe
from train import market

__all__ = [
    "CAP_FLOORS",
    "CEILING",
    "FILTERS",
    "FIRST_DAY",
    "N_DAYS",
    "PRICE_OFF",
    "RSI_BANDS",
    "SETTINGS",
    "sample_scans",
    "vix_path",
]

Floats = npt.NDArray[np.float64]
Weighted = Sequence[tuple[float, float]]
Bands = Sequence[tuple[float, float, float]]

FIRST_DAY: Final = date(2024, 6, 3)
N_DAYS: Final = 364
UNIVERSES: Final = tuple(Universe)
STRATEGIES: Final = tuple(Strategy)
TIMEFRAMES: Final = tuple(Timeframe)

UNIVERSE_WEIGHTS: Final = (0.27, 0.14, 0.16, 0.10, 0.13, 0.20)  # tuple(Universe) order
STRATEGY_WEIGHTS: Final = (0.26, 0.20, 0.18, 0.14, 0.12, 0.10)  # tuple(Strategy) order
# Per universe, over tuple(Timeframe): whole-market scans on fine bars would time out.
TIMEFRAME_WEIGHTS: Final[dict[Universe, tuple[float, ...]]] = {
    Universe.SP500: (0.10, 0.22, 0.20, 0.18, 0.30),
    Universe.NASDAQ100: (0.15, 0.25, 0.20, 0.15, 0.25),
    Universe.RUSSELL2000: (0.05, 0.15, 0.20, 0.20, 0.40),
    Universe.US_ALL: (0.02, 0.06, 0.12, 0.20, 0.60),
    Universe.ETF_LIQUID: (0.08, 0.17, 0.20, 0.20, 0.35),
    Universe.CRYPTO_TOP200: (0.15, 0.25, 0.20, 0.20, 0.20),
}
LOOKBACKS: Final[Weighted] = (
    (14, 0.1), (20, 0.15), (30, 0.1), (50, 0.18), (100, 0.15), (200, 0.17), (250, 0.08), (500, 0.07)
)  # fmt: skip

# The filters a scan can switch on, how readily people switch each on, and the values
# they leave when it is off (a price band wide enough to hold every symbol).
FILTERS: Final = ("price", "volume", "cap", "move", "relvol", "rsi")
TOGGLE_WEIGHTS: Final = (3.0, 2.0, 0.8, 1.5, 1.0, 1.2)
ACTIVE_COUNTS: Final = (0.0, 0.14, 0.28, 0.30, 0.17, 0.08, 0.03)  # P(0..6 filters on)
# The bigger the universe, the more filters people switch on to keep the list readable.
MORE_FILTERS: Final[dict[Universe, int]] = {
    Universe.NASDAQ100: -1,
    Universe.CRYPTO_TOP200: -1,
    Universe.RUSSELL2000: 1,
    Universe.US_ALL: 2,
}
# Users keep a few saved scans and re-run them; the rest of the history is ad hoc.
SAVED_PER_USER: Final = 5
RERUN_SHARE: Final = 0.8
# What a re-run copies from the saved scan: everything but when it runs.
SETTINGS: Final = (
    "universe", "strategy", "timeframe", "lookback_bars", "min_price", "max_price",
    "min_avg_volume", "min_market_cap_musd", "min_abs_change_pct", "min_relative_volume",
    "rsi_min", "rsi_max", "n_extra_filters",
)  # fmt: skip
# The longest list a user will read (drawn per scan from this range), and how many times
# they narrow a scan that would exceed it.
CEILING: Final = (30.0, 100.0)
NARROWING_ROUNDS: Final = 3
PRICE_OFF: Final = (0.0, 100_000.0)
STOCK_BANDS: Final[Bands] = (
    (1, 20, 0.16), (5, 500, 0.22), (10, 1000, 0.16), (2, 50, 0.12), (20, 200, 0.1),
    (0.5, 5, 0.06), (50, 1000, 0.06), (1, 1000, 0.12),
)  # fmt: skip
ETF_BANDS: Final[Bands] = ((10, 1000, 0.35), (5, 500, 0.3), (20, 200, 0.2), (1, 20, 0.15))
CRYPTO_BANDS: Final[Bands] = (
    (0.01, 10, 0.25), (1, 1000, 0.3), (0.0001, 1, 0.2), (10, 100000, 0.25)
)  # fmt: skip
VOLUME_FLOORS: Final[Weighted] = (
    (1e5, 0.15), (2e5, 0.1), (3e5, 0.1), (5e5, 0.2), (1e6, 0.22), (2e6, 0.1), (5e6, 0.13)
)  # fmt: skip
CAP_FLOORS: Final[Weighted] = (
    (50, 0.1), (100, 0.15), (300, 0.2), (500, 0.1), (1000, 0.2), (2000, 0.15), (10000, 0.1)
)  # fmt: skip
MOVE_FILTERS: Final[Weighted] = (
    (0.5, 0.06), (1, 0.14), (2, 0.18), (3, 0.15), (4, 0.08), (5, 0.14), (7, 0.07),
    (10, 0.09), (15, 0.05), (20, 0.04),
)  # fmt: skip
RELVOL_FILTERS: Final[Weighted] = (
    (1, 0.2), (1.2, 0.15), (1.5, 0.25), (2, 0.2), (3, 0.13), (5, 0.07)
)  # fmt: skip
RSI_BANDS: Final[Bands] = (
    (30, 70, 0.34), (0, 30, 0.14), (70, 100, 0.12), (40, 60, 0.1), (20, 80, 0.14),
    (50, 100, 0.08), (0, 50, 0.08),
)  # fmt: skip


def _pick(rng: np.random.Generator, options: Weighted, n: int) -> Floats:
    values = np.asarray([v for v, _ in options], dtype=np.float64)
    weights = np.asarray([w for _, w in options], dtype=np.float64)
    return values[rng.choice(len(values), size=n, p=weights / weights.sum())]


def _pick_band(rng: np.random.Generator, bands: Bands, n: int) -> tuple[Floats, Floats]:
    lo = np.asarray([b[0] for b in bands], dtype=np.float64)
    hi = np.asarray([b[1] for b in bands], dtype=np.float64)
    weights = np.asarray([b[2] for b in bands], dtype=np.float64)
    i = rng.choice(len(bands), size=n, p=weights / weights.sum())
    return lo[i], hi[i]


def vix_path(rng: np.random.Generator, n_days: int) -> Floats:
    """A daily VIX-like path: mean-reverting in logs around 18, with rare fear spikes."""
    log_mean = np.log(18.0)
    x = np.empty(n_days)
    level = log_mean + rng.normal(0.0, 0.2)
    for day in range(n_days):
        spike = 0.45 if rng.random() < 0.015 else 0.0
        level = log_mean + 0.93 * (level - log_mean) + rng.normal(0.0, 0.075) + spike
        x[day] = level
    return np.exp(x)


def _timestamps(rng: np.random.Generator, n: int) -> tuple[list[datetime], npt.NDArray[np.intp]]:
    """When people scan (UTC) and on which day: mostly weekdays in session, most at the open."""
    days = [FIRST_DAY + timedelta(days=d) for d in range(N_DAYS)]
    weekdays = np.asarray([d for d in range(N_DAYS) if days[d].weekday() < 5])
    weekends = np.asarray([d for d in range(N_DAYS) if days[d].weekday() >= 5])
    day = np.where(rng.random(n) < 0.05, rng.choice(weekends, n), rng.choice(weekdays, n))
    kind = rng.choice(4, size=n, p=(0.22, 0.60, 0.10, 0.08))  # open rush, session, pre, after
    minutes = np.select(
        [kind == 0, kind == 1, kind == 2],
        [rng.exponential(25.0, n) % 390, rng.uniform(0, 390, n), rng.uniform(-150, 0, n)],
        rng.uniform(390, 630, n),
    )
    seconds = np.floor(minutes * 60.0).astype(np.int64) + (9 * 60 + 30) * 60
    stamps = []
    for d, s in zip(day, seconds, strict=True):
        # Wall-clock arithmetic in New York, so 09:30 stays 09:30 across DST changes.
        local = datetime.combine(days[d], datetime.min.time(), MARKET_TZ)
        stamps.append((local + timedelta(seconds=int(s))).astimezone(UTC))
    return stamps, day.astype(np.intp)


def _toggle_weights(uni: npt.NDArray[np.intp], strat: npt.NDArray[np.intp]) -> Floats:
    """How readily each scan would switch on each filter, (n, len(FILTERS))."""
    weights = np.tile(np.asarray(TOGGLE_WEIGHTS), (len(uni), 1))
    f = FILTERS.index
    big = np.isin(uni, (UNIVERSES.index(Universe.RUSSELL2000), UNIVERSES.index(Universe.US_ALL)))
    weights[big, f("volume")] *= 2.0  # nobody scans 8,000 symbols without a liquidity floor
    weights[big, f("cap")] *= 1.5
    weights[uni == UNIVERSES.index(Universe.CRYPTO_TOP200), f("cap")] *= 0.5
    for strategy, name, boost in (
        (Strategy.GAP, "move", 6.0),
        (Strategy.MOMENTUM, "move", 1.5),
        (Strategy.VOLUME_SPIKE, "relvol", 6.0),
        (Strategy.BREAKOUT, "relvol", 1.5),
        (Strategy.MEAN_REVERSION, "rsi", 4.0),
    ):
        weights[strat == STRATEGIES.index(strategy), f(name)] *= boost
    return weights


def _price_bands(rng: np.random.Generator, uni: npt.NDArray[np.intp]) -> tuple[Floats, Floats]:
    n = len(uni)
    lo, hi = np.empty(n), np.empty(n)
    etf, crypto = UNIVERSES.index(Universe.ETF_LIQUID), UNIVERSES.index(Universe.CRYPTO_TOP200)
    for mask, bands in (
        ((uni != etf) & (uni != crypto), STOCK_BANDS),
        (uni == etf, ETF_BANDS),
        (uni == crypto, CRYPTO_BANDS),
    ):
        lo[mask], hi[mask] = _pick_band(rng, bands, int(mask.sum()))
    # Some people type their own band instead of a preset.
    custom = rng.random(n) < 0.15
    custom_lo = np.round(np.exp(rng.uniform(np.log(0.5), np.log(100), n)), 2)
    custom_hi = np.round(custom_lo * np.exp(rng.uniform(np.log(3), np.log(100), n)), 2)
    return np.where(custom, custom_lo, lo), np.where(custom, custom_hi, hi)


def _presets(rng: np.random.Generator, a: market.ScanArrays) -> market.ScanArrays:
    """`a` with every filter switched on at the preset each scan would pick for it."""
    n = len(a.universe)
    lo, hi = _price_bands(rng, a.universe)
    custom_volume = np.round(np.exp(rng.uniform(np.log(1e5), np.log(5e6), n)), -3)
    volume = np.where(rng.random(n) < 0.12, custom_volume, _pick(rng, VOLUME_FLOORS, n))
    rsi_lo, rsi_hi = _pick_band(rng, RSI_BANDS, n)
    return msgspec.structs.replace(
        a,
        min_price=lo,
        max_price=hi,
        min_avg_volume=volume,
        min_market_cap_musd=_pick(rng, CAP_FLOORS, n),
        min_abs_change_pct=_pick(rng, MOVE_FILTERS, n),
        min_relative_volume=_pick(rng, RELVOL_FILTERS, n),
        rsi_min=rsi_lo,
        rsi_max=rsi_hi,
    )


def _switch(
    off: market.ScanArrays, on: market.ScanArrays, mask: npt.NDArray[np.bool_]
) -> market.ScanArrays:
    """Each scan's filters set from `on` where its column of `mask` is true, else `off`."""

    def pick(field: str, name: str) -> Floats:
        column = mask[:, FILTERS.index(name)]
        return np.asarray(np.where(column, getattr(on, field), getattr(off, field)), np.float64)

    return msgspec.structs.replace(
        off,
        min_price=pick("min_price", "price"),
        max_price=pick("max_price", "price"),
        min_avg_volume=pick("min_avg_volume", "volume"),
        min_market_cap_musd=pick("min_market_cap_musd", "cap"),
        min_abs_change_pct=pick("min_abs_change_pct", "move"),
        min_relative_volume=pick("min_relative_volume", "relvol"),
        rsi_min=pick("rsi_min", "rsi"),
        rsi_max=pick("rsi_max", "rsi"),
    )


def _narrow(
    rng: np.random.Generator, off: market.ScanArrays, on: market.ScanArrays, weights: Floats
) -> market.ScanArrays:
    """Switch filters on (weighted, without replacement), then narrow long lists.

    Nobody reads a list of hundreds: a scan the user knows would return more than their
    ceiling gets the next filter switched on, and when every filter is on, custom filters
    until it fits. Lists that come back short or empty are left alone: that is the
    over-strict scan scanopt exists to warn about.
    """
    n = len(off.universe)
    keys = np.log(weights) + rng.gumbel(size=weights.shape)
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    n_active = rng.choice(len(ACTIVE_COUNTS), size=n, p=ACTIVE_COUNTS)
    more = np.asarray([MORE_FILTERS.get(u, 0) for u in UNIVERSES])[off.universe]
    mask = rank < np.clip(n_active + more, 0, len(FILTERS))[:, None]
    ceiling = np.exp(rng.uniform(np.log(CEILING[0]), np.log(CEILING[1]), n))
    extra = off.n_extra_filters.copy()
    rows = np.arange(n)
    for _ in range(NARROWING_ROUNDS):
        a = msgspec.structs.replace(_switch(off, on, mask), n_extra_filters=extra)
        mean = market.expected_counts(a)
        many = mean > ceiling
        spare = np.where(mask, -np.inf, keys)
        can_add = many & np.isfinite(spare.max(axis=1))
        mask[rows[can_add], spare.argmax(axis=1)[can_add]] = True
        cuts = np.ceil(np.log(mean / ceiling) / -np.log(market.EXTRA_FILTER_KEEP))
        extra = np.where(many & ~can_add, np.minimum(extra + cuts, 20.0), extra)
    return msgspec.structs.replace(_switch(off, on, mask), n_extra_filters=extra)


def _drafts(
    rng: np.random.Generator,
    favourite: npt.NDArray[np.intp],
    user: npt.NDArray[np.intp],
    stamps: Sequence[datetime],
    vix: Floats,
) -> market.ScanArrays:
    """Scans the users set up at those instants (their first runs)."""
    n = len(user)
    others = rng.choice(len(UNIVERSES), size=n, p=UNIVERSE_WEIGHTS)
    uni = np.where(rng.random(n) < 0.6, favourite[user], others).astype(np.intp)
    strat = rng.choice(len(STRATEGIES), size=n, p=STRATEGY_WEIGHTS).astype(np.intp)
    tf = [rng.choice(len(TIMEFRAMES), p=TIMEFRAME_WEIGHTS[UNIVERSES[u]]) for u in uni]
    lookback = np.where(rng.random(n) < 0.15, rng.integers(10, 501, n), _pick(rng, LOOKBACKS, n))
    power_user = np.where(rng.random(n) < 0.05, rng.integers(3, 11, n), 0)
    extra = np.minimum(rng.geometric(0.5, n) - 1 + power_user, 20)
    clock = np.asarray([session_clock(t) for t in stamps], dtype=np.float64).reshape(-1, 3)
    zeros = np.zeros(n)
    off = market.ScanArrays(
        universe=uni,
        strategy=strat,
        timeframe=np.asarray(tf, dtype=np.intp),
        lookback_bars=lookback.astype(np.float64),
        min_price=zeros + PRICE_OFF[0],
        max_price=zeros + PRICE_OFF[1],
        min_avg_volume=zeros,
        min_market_cap_musd=zeros,
        min_abs_change_pct=zeros,
        min_relative_volume=zeros,
        rsi_min=zeros,
        rsi_max=zeros + 100.0,
        n_extra_filters=extra.astype(np.float64),
        volatility_index=vix,
        minutes_since_open=clock[:, 0],
        market_open=clock[:, 2],
    )
    return _narrow(rng, off, _presets(rng, off), _toggle_weights(uni, strat))


def _rerun(
    template: market.ScanArrays,
    row: npt.NDArray[np.intp],
    scans: market.ScanArrays,
    mask: npt.NDArray[np.bool_],
) -> market.ScanArrays:
    """`scans` with the rows in `mask` replaced by templates `row` (their own time and VIX)."""
    changes = {
        name: np.where(mask, getattr(template, name)[row], getattr(scans, name))
        for name in SETTINGS
    }
    return msgspec.structs.replace(scans, **changes)


def sample_scans(rng: np.random.Generator, n: int) -> list[Scan]:
    """`n` scans as people set them, in time order, every one with its timestamp.

    Each user keeps a few saved scans, set up once, and re-runs them (the first most
    often) at new times and market regimes; the rest of the history is ad hoc.
    """
    n_users = int(np.clip(n // 60, 8, 400))
    favourite = rng.choice(len(UNIVERSES), size=n_users, p=UNIVERSE_WEIGHTS).astype(np.intp)
    path = vix_path(rng, N_DAYS)

    def vix_on(day: npt.NDArray[np.intp]) -> Floats:
        noisy = path[day] * np.exp(rng.normal(0.0, 0.03, len(day)))
        return np.asarray(np.round(np.clip(noisy, 5.0, 90.0), 2), dtype=np.float64)

    saved_user = np.repeat(np.arange(n_users), SAVED_PER_USER)
    saved_stamps, saved_day = _timestamps(rng, len(saved_user))
    saved = _drafts(rng, favourite, saved_user, saved_stamps, vix_on(saved_day))
    user = rng.integers(0, n_users, n)
    stamps, day = _timestamps(rng, n)
    ad_hoc = _drafts(rng, favourite, user, stamps, vix_on(day))
    slot_weights = 1.0 / np.arange(1, SAVED_PER_USER + 1)
    slot = rng.choice(SAVED_PER_USER, size=n, p=slot_weights / slot_weights.sum())
    a = _rerun(saved, user * SAVED_PER_USER + slot, ad_hoc, rng.random(n) < RERUN_SHARE)
    order = np.argsort(np.asarray([s.timestamp() for s in stamps]), kind="stable")
    return [
        Scan(
            user_id=f"user-{user[i]:04d}",
            session_id=f"user-{user[i]:04d}-{stamps[i]:%Y%m%d}",
            universe=UNIVERSES[a.universe[i]],
            strategy=STRATEGIES[a.strategy[i]],
            timeframe=TIMEFRAMES[a.timeframe[i]],
            lookback_bars=int(a.lookback_bars[i]),
            min_price=float(a.min_price[i]),
            max_price=float(a.max_price[i]),
            min_avg_volume=float(a.min_avg_volume[i]),
            min_market_cap_musd=float(a.min_market_cap_musd[i]),
            min_abs_change_pct=float(a.min_abs_change_pct[i]),
            min_relative_volume=float(a.min_relative_volume[i]),
            rsi_min=float(a.rsi_min[i]),
            rsi_max=float(a.rsi_max[i]),
            n_extra_filters=int(a.n_extra_filters[i]),
            volatility_index=float(a.volatility_index[i]),
            timestamp=stamps[i],
        )
        for i in order
    ]
