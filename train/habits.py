"""How people set scans: the parameter distribution of simulated scan history.

People do not draw scan parameters uniformly. A scanner's filters are toggles: a scan
switches on a handful of them (price band and volume floor most often, the move filter for
gap hunters, relative volume for volume spikes, the RSI band for mean reversion) and sets
each to a round preset (price 5-500, volume over 1M, RSI 30-70), with move filters often
too strict. Users re-run their favourite universe, whole-market scans are mostly daily,
and scans happen mostly in market hours, most of all right after the open. The market
regime (a VIX-like index) is one path over the year that every scan of a day shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from server.domain.features import MARKET_TZ
from server.domain.scan import Scan, Strategy, Timeframe, Universe

__all__ = ["FIRST_DAY", "N_DAYS", "sample_scans", "vix_path"]

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
MORE_FILTERS: Final[dict[Universe, int]] = {Universe.RUSSELL2000: 1, Universe.US_ALL: 2}
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


def _toggles(
    rng: np.random.Generator, uni: npt.NDArray[np.intp], strat: npt.NDArray[np.intp]
) -> npt.NDArray[np.bool_]:
    """Which filters each scan switches on: a weighted draw without replacement (Gumbel top-k)."""
    n = len(uni)
    weights = np.tile(np.asarray(TOGGLE_WEIGHTS), (n, 1))
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
    keys = np.log(weights) + rng.gumbel(size=weights.shape)
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    n_active = rng.choice(len(ACTIVE_COUNTS), size=n, p=ACTIVE_COUNTS)
    more = np.asarray([MORE_FILTERS.get(u, 0) for u in UNIVERSES])[uni]
    n_active = np.minimum(n_active + more, len(FILTERS))
    return np.asarray(rank < n_active[:, None])


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


def sample_scans(rng: np.random.Generator, n: int) -> list[Scan]:
    """`n` scans as people set them, in time order, every one with its timestamp."""
    n_users = int(np.clip(n // 60, 8, 400))
    favourite = rng.choice(len(UNIVERSES), size=n_users, p=UNIVERSE_WEIGHTS)
    user = rng.integers(0, n_users, n)
    others = rng.choice(len(UNIVERSES), size=n, p=UNIVERSE_WEIGHTS)
    uni = np.where(rng.random(n) < 0.6, favourite[user], others).astype(np.intp)
    strat = rng.choice(len(STRATEGIES), size=n, p=STRATEGY_WEIGHTS).astype(np.intp)
    tf = np.asarray([rng.choice(len(TIMEFRAMES), p=TIMEFRAME_WEIGHTS[UNIVERSES[u]]) for u in uni])
    lookback = np.where(rng.random(n) < 0.15, rng.integers(10, 501, n), _pick(rng, LOOKBACKS, n))

    on = _toggles(rng, uni, strat)
    col = {name: on[:, i] for i, name in enumerate(FILTERS)}
    lo, hi = _price_bands(rng, uni)
    lo, hi = np.where(col["price"], lo, PRICE_OFF[0]), np.where(col["price"], hi, PRICE_OFF[1])
    custom_volume = np.round(np.exp(rng.uniform(np.log(1e5), np.log(5e6), n)), -3)
    volume = np.where(rng.random(n) < 0.12, custom_volume, _pick(rng, VOLUME_FLOORS, n))
    volume = np.where(col["volume"], volume, 0.0)
    cap = np.where(col["cap"], _pick(rng, CAP_FLOORS, n), 0.0)
    move = np.where(col["move"], _pick(rng, MOVE_FILTERS, n), 0.0)
    relvol = np.where(col["relvol"], _pick(rng, RELVOL_FILTERS, n), 0.0)
    rsi_lo, rsi_hi = _pick_band(rng, RSI_BANDS, n)
    rsi_lo, rsi_hi = np.where(col["rsi"], rsi_lo, 0.0), np.where(col["rsi"], rsi_hi, 100.0)
    power_user = np.where(rng.random(n) < 0.05, rng.integers(3, 11, n), 0)
    extra = np.minimum(rng.geometric(0.5, n) - 1 + power_user, 20)

    stamps, day = _timestamps(rng, n)
    vix = np.clip(vix_path(rng, N_DAYS)[day] * np.exp(rng.normal(0.0, 0.03, n)), 5.0, 90.0)
    order = np.argsort(np.asarray([s.timestamp() for s in stamps]), kind="stable")
    return [
        Scan(
            user_id=f"user-{user[i]:04d}",
            session_id=f"user-{user[i]:04d}-{stamps[i]:%Y%m%d}",
            universe=UNIVERSES[uni[i]],
            strategy=STRATEGIES[strat[i]],
            timeframe=TIMEFRAMES[tf[i]],
            lookback_bars=int(lookback[i]),
            min_price=float(lo[i]),
            max_price=float(hi[i]),
            min_avg_volume=float(volume[i]),
            min_market_cap_musd=float(cap[i]),
            min_abs_change_pct=float(move[i]),
            min_relative_volume=float(relvol[i]),
            rsi_min=float(rsi_lo[i]),
            rsi_max=float(rsi_hi[i]),
            n_extra_filters=int(extra[i]),
            volatility_index=round(float(vix[i]), 2),
            timestamp=stamps[i],
        )
        for i in order
    ]
