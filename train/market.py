"""The ground truth of a market scanner: what a scan returns and how long it takes.

A scan's expected result count is the universe size times the share of symbols that pass
every filter. Each filter is tested against a distribution of the universe's symbols:

    price band       lognormal price per universe (crypto spans decades, ETFs cluster)
    volume, cap      lognormal floors per universe
    move filter      |change| is fat-tailed (Lomax); its scale grows with the VIX and near
                     the open/close
    relative volume  lognormal around 1; heavier in volatile markets and at the open
    RSI band         normal around 50, wider in volatile markets
    strategy         the share of symbols whose signal fires at all
    extra filters    each keeps a fixed share of what is left

The filters are treated as independent, so the mean is a smooth product a model can learn
from the features in server.domain.features. The count is drawn negative binomial
(over-dispersed) around that mean and capped at the universe size.

Duration is a base latency plus a per-symbol cost (fixed request cost plus lookback bars
times a per-bar cost that is higher for finer bars), times the data provider's load at that
time of day (heaviest at the open), with log-normal noise and a timeout cap.

The expectations are the noiseless values: the mean count, and the duration without its
log-normal noise (its median), capped at the timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from server.domain.features import SESSION_MINUTES, session_clock
from server.domain.scan import (
    UNIVERSE_SIZES,
    Scan,
    ScanOutcome,
    Strategy,
    Timeframe,
    Universe,
)

__all__ = [
    "BAR_COST_MS",
    "COUNT_DISPERSION",
    "DURATION_SIGMA",
    "EXTRA_FILTER_KEEP",
    "STRATEGY_BASE_RATES",
    "TIMEOUT_S",
    "UNIVERSE_PROFILES",
    "FilterPasses",
    "ScanArrays",
    "UniverseProfile",
    "draw_counts",
    "draw_durations",
    "draw_outcome",
    "expected_counts",
    "expected_duration_s",
    "expected_durations",
    "expected_result_count",
    "filter_passes",
    "market_activity",
    "pass_rates",
    "provider_load",
    "scan_arrays",
    "uncapped_durations",
]

Floats = npt.NDArray[np.float64]

TIMEOUT_S: Final = 120.0
# Negative-binomial size k: variance = mu + mu^2 / k. Real scans are over-dispersed (a
# sector moves together), but not so much that the oracle error floor swamps the signal.
COUNT_DISPERSION: Final = 3.0
DURATION_SIGMA: Final = 0.2
EXTRA_FILTER_KEEP: Final = 0.8
VIX_NORMAL: Final = 18.0
RSI_CENTER: Final = 50.0
RELVOL_SIGMA: Final = 0.6
BASE_LATENCY_S: Final = 4.5
SYMBOL_COST_MS: Final = 8.0
# Big jobs fan out: the scanner adds one fetch worker per this many symbols.
FANOUT_SYMBOLS: Final = 4000.0
# Per-bar cost: fine bars are not cached by the provider and come in more pages.
BAR_COST_MS: Final[dict[Timeframe, float]] = {
    Timeframe.M1: 0.20,
    Timeframe.M5: 0.12,
    Timeframe.M15: 0.08,
    Timeframe.H1: 0.05,
    Timeframe.D1: 0.025,
}
EXTRA_FILTER_COST: Final = 0.02


class UniverseProfile(msgspec.Struct, frozen=True, kw_only=True):
    """How a universe's symbols are distributed (medians and log-sigmas of lognormals)."""

    price_median: float
    price_sigma: float
    volume_median: float
    volume_sigma: float
    cap_median_musd: float
    cap_sigma: float
    move_scale_pct: float  # mean |change| in percent on a normal day (VIX 18)


UNIVERSE_PROFILES: Final[dict[Universe, UniverseProfile]] = {
    Universe.SP500: UniverseProfile(
        price_median=120.0,
        price_sigma=0.9,
        volume_median=2.5e6,
        volume_sigma=0.9,
        cap_median_musd=35_000.0,
        cap_sigma=1.0,
        move_scale_pct=1.3,
    ),
    Universe.NASDAQ100: UniverseProfile(
        price_median=180.0,
        price_sigma=0.9,
        volume_median=4e6,
        volume_sigma=0.9,
        cap_median_musd=80_000.0,
        cap_sigma=1.0,
        move_scale_pct=1.6,
    ),
    Universe.RUSSELL2000: UniverseProfile(
        price_median=18.0,
        price_sigma=1.1,
        volume_median=4e5,
        volume_sigma=1.3,
        cap_median_musd=900.0,
        cap_sigma=1.0,
        move_scale_pct=2.6,
    ),
    Universe.US_ALL: UniverseProfile(
        price_median=12.0,
        price_sigma=1.6,
        volume_median=1.5e5,
        volume_sigma=1.8,
        cap_median_musd=400.0,
        cap_sigma=2.0,
        move_scale_pct=3.2,
    ),
    Universe.ETF_LIQUID: UniverseProfile(
        price_median=55.0,
        price_sigma=0.8,
        volume_median=1.2e6,
        volume_sigma=1.3,
        cap_median_musd=3_000.0,
        cap_sigma=1.3,
        move_scale_pct=0.9,
    ),
    Universe.CRYPTO_TOP200: UniverseProfile(
        price_median=1.5,
        price_sigma=2.6,
        volume_median=5e6,
        volume_sigma=2.2,
        cap_median_musd=800.0,
        cap_sigma=1.6,
        move_scale_pct=4.0,
    ),
}

# The share of symbols whose strategy signal fires at all, before the user's filters.
STRATEGY_BASE_RATES: Final[dict[Strategy, float]] = {
    Strategy.MOMENTUM: 0.50,
    Strategy.BREAKOUT: 0.30,
    Strategy.MEAN_REVERSION: 0.40,
    Strategy.VOLUME_SPIKE: 0.25,
    Strategy.GAP: 0.20,
    Strategy.EARNINGS_DRIFT: 0.12,
}

_UNIVERSES: Final = tuple(Universe)
_STRATEGIES: Final = tuple(Strategy)
_TIMEFRAMES: Final = tuple(Timeframe)


def _table(values: Sequence[float]) -> Floats:
    return np.asarray(values, dtype=np.float64)


class ScanArrays(msgspec.Struct, frozen=True, kw_only=True):
    """The columns of many scans the market model reads, as float arrays (one per field)."""

    universe: npt.NDArray[np.intp]  # index into tuple(Universe)
    strategy: npt.NDArray[np.intp]  # index into tuple(Strategy)
    timeframe: npt.NDArray[np.intp]  # index into tuple(Timeframe)
    lookback_bars: Floats
    min_price: Floats
    max_price: Floats
    min_avg_volume: Floats
    min_market_cap_musd: Floats
    min_abs_change_pct: Floats
    min_relative_volume: Floats
    rsi_min: Floats
    rsi_max: Floats
    n_extra_filters: Floats
    volatility_index: Floats
    minutes_since_open: Floats
    market_open: Floats

    @property
    def size(self) -> Floats:
        """Universe size of every scan."""
        return _table([UNIVERSE_SIZES[u] for u in _UNIVERSES])[self.universe]


def scan_arrays(scans: Sequence[Scan]) -> ScanArrays:
    """The market model's view of `scans`; every scan must carry its timestamp."""
    clocks = []
    for i, s in enumerate(scans):
        if s.timestamp is None:
            # "Now" would make the ground truth depend on when the code runs.
            raise ValueError(f"scan {i} has no timestamp; the market model needs when it ran")
        clocks.append(session_clock(s.timestamp))
    clock = np.asarray(clocks, dtype=np.float64).reshape(-1, 3)
    u_index = {u: i for i, u in enumerate(_UNIVERSES)}
    s_index = {s: i for i, s in enumerate(_STRATEGIES)}
    t_index = {t: i for i, t in enumerate(_TIMEFRAMES)}

    def col(name: str) -> Floats:
        return np.asarray([getattr(s, name) for s in scans], dtype=np.float64)

    return ScanArrays(
        universe=np.asarray([u_index[s.universe] for s in scans], dtype=np.intp),
        strategy=np.asarray([s_index[s.strategy] for s in scans], dtype=np.intp),
        timeframe=np.asarray([t_index[s.timeframe] for s in scans], dtype=np.intp),
        lookback_bars=col("lookback_bars"),
        min_price=col("min_price"),
        max_price=col("max_price"),
        min_avg_volume=col("min_avg_volume"),
        min_market_cap_musd=col("min_market_cap_musd"),
        min_abs_change_pct=col("min_abs_change_pct"),
        min_relative_volume=col("min_relative_volume"),
        rsi_min=col("rsi_min"),
        rsi_max=col("rsi_max"),
        n_extra_filters=col("n_extra_filters"),
        volatility_index=col("volatility_index"),
        minutes_since_open=clock[:, 0],
        market_open=clock[:, 2],
    )


def _profile(a: ScanArrays, field: str) -> Floats:
    return _table([getattr(UNIVERSE_PROFILES[u], field) for u in _UNIVERSES])[a.universe]


def _above(floor: Floats, median: Floats, sigma: Floats) -> Floats:
    """Share of a lognormal(median, sigma) above `floor`; a floor of 0 passes everything."""
    with np.errstate(divide="ignore"):
        z = (np.log(floor) - np.log(median)) / sigma
    return np.asarray(1.0 - ndtr(z), dtype=np.float64)


def market_activity(a: ScanArrays) -> Floats:
    """How much symbols move relative to midday: U-shaped over the session, calm when closed.

    Crypto trades around the clock but its flow, too, follows the US session.
    """
    m = np.clip(a.minutes_since_open, 0.0, SESSION_MINUTES)
    in_session = 1.0 + 0.5 * np.exp(-m / 60.0) + 0.25 * np.exp(-(SESSION_MINUTES - m) / 60.0)
    return np.where(a.market_open > 0, in_session, 0.7)


class FilterPasses(msgspec.Struct, frozen=True, kw_only=True):
    """The share of a universe's symbols each filter of each scan lets through (1 = off)."""

    price: Floats
    volume: Floats
    cap: Floats
    move: Floats
    relvol: Floats
    rsi: Floats
    strategy: Floats
    extra: Floats

    def total(self) -> Floats:
        """The share that passes every filter: the filters are independent."""
        product = self.price * self.volume * self.cap * self.move * self.relvol * self.rsi
        return np.asarray(product * self.strategy * self.extra, dtype=np.float64)


def filter_passes(a: ScanArrays) -> FilterPasses:
    """Each filter's pass rate, tested against the universe's symbol distributions."""
    vix = a.volatility_index / VIX_NORMAL
    activity = market_activity(a)
    log_price = np.log(_profile(a, "price_median"))
    price_sigma = _profile(a, "price_sigma")
    with np.errstate(divide="ignore"):
        lo = (np.log(a.min_price) - log_price) / price_sigma
    hi = (np.log(a.max_price) - log_price) / price_sigma
    # |change| is Lomax (shape 2, fat-tailed like real returns) with the profile's mean.
    move_scale = _profile(a, "move_scale_pct") * vix**0.75 * activity
    relvol_median = 0.9 * activity**0.6 * vix**0.3
    rsi_sd = 12.0 * vix**0.35
    return FilterPasses(
        price=np.asarray(ndtr(hi) - ndtr(lo), dtype=np.float64),
        volume=_above(a.min_avg_volume, _profile(a, "volume_median"), _profile(a, "volume_sigma")),
        cap=_above(a.min_market_cap_musd, _profile(a, "cap_median_musd"), _profile(a, "cap_sigma")),
        move=(1.0 + a.min_abs_change_pct / move_scale) ** -2.0,
        relvol=_above(a.min_relative_volume, relvol_median, np.full_like(vix, RELVOL_SIGMA)),
        rsi=np.asarray(
            ndtr((a.rsi_max - RSI_CENTER) / rsi_sd) - ndtr((a.rsi_min - RSI_CENTER) / rsi_sd),
            dtype=np.float64,
        ),
        strategy=_table([STRATEGY_BASE_RATES[s] for s in _STRATEGIES])[a.strategy],
        extra=EXTRA_FILTER_KEEP**a.n_extra_filters,
    )


def pass_rates(a: ScanArrays) -> Floats:
    """The share of a universe's symbols that pass every filter of each scan."""
    return filter_passes(a).total()


def expected_counts(a: ScanArrays) -> Floats:
    """Noiseless mean result count of each scan: universe size times its pass rate."""
    return a.size * pass_rates(a)


def provider_load(a: ScanArrays) -> Floats:
    """The data provider's slowdown by time of day: heaviest at the open, quiet overnight."""
    m = np.clip(a.minutes_since_open, 0.0, SESSION_MINUTES)
    in_session = 1.0 + 0.6 * np.exp(-m / 45.0) + 0.2 * np.exp(-(SESSION_MINUTES - m) / 45.0)
    pre_open = (a.minutes_since_open < 0) & (a.minutes_since_open >= -120)
    closed = np.where(pre_open, 1.05, 0.75)
    return np.where(a.market_open > 0, in_session, closed)


def uncapped_durations(a: ScanArrays) -> Floats:
    """Median duration in seconds before the timeout: base plus symbols x per-symbol cost.

    The symbols are shared among fetch workers (more for bigger universes), so a whole-
    market scan is slow but only the heaviest ones (fine bars, long lookback) time out.
    """
    bar_ms = _table([BAR_COST_MS[t] for t in _TIMEFRAMES])[a.timeframe]
    per_symbol_ms = SYMBOL_COST_MS + a.lookback_bars * bar_ms
    compute = 1.0 + EXTRA_FILTER_COST * a.n_extra_filters
    workers = 1.0 + a.size / FANOUT_SYMBOLS
    work_s = BASE_LATENCY_S + a.size * per_symbol_ms * compute / workers / 1000.0
    return np.asarray(work_s * provider_load(a), dtype=np.float64)


def expected_durations(a: ScanArrays) -> Floats:
    """Noiseless duration of each scan (the median), capped at the timeout."""
    return np.minimum(uncapped_durations(a), TIMEOUT_S)


def draw_counts(mean: Floats, size: Floats, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Negative-binomial counts around `mean` (over-dispersed), capped at the universe size."""
    k = COUNT_DISPERSION
    drawn = rng.negative_binomial(k, k / (k + np.maximum(mean, 0.0)))
    return np.minimum(drawn, size.astype(np.int64)).astype(np.int64)


def draw_durations(uncapped: Floats, rng: np.random.Generator) -> Floats:
    """Log-normal noise around the median duration, then the timeout cap."""
    noisy = uncapped * np.exp(rng.normal(0.0, DURATION_SIGMA, size=uncapped.shape))
    return np.asarray(np.minimum(noisy, TIMEOUT_S), dtype=np.float64)


def expected_result_count(scan: Scan) -> float:
    """Noiseless mean result count of one scan."""
    return float(expected_counts(scan_arrays([scan]))[0])


def expected_duration_s(scan: Scan) -> float:
    """Noiseless duration of one scan in seconds (the median), capped at the timeout."""
    return float(expected_durations(scan_arrays([scan]))[0])


def draw_outcome(scan: Scan, rng: np.random.Generator) -> ScanOutcome:
    """What one scan really returns: a noisy count and duration around the expectations."""
    a = scan_arrays([scan])
    count = draw_counts(expected_counts(a), a.size, rng)
    duration = draw_durations(uncapped_durations(a), rng)
    return ScanOutcome(result_count=int(count[0]), duration_s=float(duration[0]))
