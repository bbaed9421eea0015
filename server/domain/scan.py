"""The scan: one definition of every field, enum and range.

Training, export and serving all import this module, so a field cannot mean one thing
offline and another online. It imports nothing but the standard library and msgspec.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Final

import msgspec

__all__ = [
    "ID_PATTERN",
    "TIMEFRAME_MINUTES",
    "UNIVERSE_SIZES",
    "Id",
    "Name",
    "ResultCount",
    "Scan",
    "ScanOutcome",
    "ScanRecord",
    "Strategy",
    "Timeframe",
    "Universe",
    "WireStruct",
]


class WireStruct(
    msgspec.Struct,
    forbid_unknown_fields=True,
    omit_defaults=True,
    frozen=True,
    kw_only=True,
):
    """The one base that sets the rules for every wire type: unknown fields are errors."""


class Universe(enum.StrEnum):
    """The symbol lists a scan can run over."""

    SP500 = "sp500"
    NASDAQ100 = "nasdaq100"
    RUSSELL2000 = "russell2000"
    US_ALL = "us_all"
    ETF_LIQUID = "etf_liquid"
    CRYPTO_TOP200 = "crypto_top200"


class Strategy(enum.StrEnum):
    """The scanner's built-in strategies."""

    MOMENTUM = "momentum"
    BREAKOUT = "breakout"
    MEAN_REVERSION = "mean_reversion"
    VOLUME_SPIKE = "volume_spike"
    GAP = "gap"
    EARNINGS_DRIFT = "earnings_drift"


class Timeframe(enum.StrEnum):
    """Bar size of the data each symbol is scanned on."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    D1 = "1d"


UNIVERSE_SIZES: Final[dict[Universe, int]] = {
    Universe.SP500: 503,
    Universe.NASDAQ100: 101,
    Universe.RUSSELL2000: 2000,
    Universe.US_ALL: 8000,
    Universe.ETF_LIQUID: 500,
    Universe.CRYPTO_TOP200: 200,
}

# A trading day has 390 one-minute bars; "1d" counts as one whole session.
TIMEFRAME_MINUTES: Final[dict[Timeframe, int]] = {
    Timeframe.M1: 1,
    Timeframe.M5: 5,
    Timeframe.M15: 15,
    Timeframe.H1: 60,
    Timeframe.D1: 390,
}

# Ids go into log lines, SQL rows and dashboards: no control characters (NUL, which
# PostgreSQL refuses in text; C0, DEL, C1) and no Unicode bidirectional controls (the
# marks U+061C, U+200E, U+200F, embeddings and overrides U+202A-U+202E, isolates
# U+2066-U+2069), which would make one id display as another.
ID_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+$"
Id = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        pattern=ID_PATTERN,
        description="1-128 characters; no control or bidirectional-override characters",
    ),
]
# Experiment and arm names: a short slug.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
# A scan cannot return more symbols than the largest universe holds.
ResultCount = Annotated[int, msgspec.Meta(ge=0, le=max(UNIVERSE_SIZES.values()))]
# Upper bounds exist so that 1e400 (parsed as infinity) is refused, not only NaN.
Price = Annotated[float, msgspec.Meta(ge=0.0, le=1_000_000.0)]
Volume = Annotated[float, msgspec.Meta(ge=0.0, le=1e12)]
MarketCap = Annotated[float, msgspec.Meta(ge=0.0, le=100_000_000.0)]
ChangePct = Annotated[float, msgspec.Meta(ge=0.0, le=50.0)]
RelativeVolume = Annotated[float, msgspec.Meta(ge=0.0, le=20.0)]
Rsi = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
Lookback = Annotated[int, msgspec.Meta(ge=10, le=500)]
ExtraFilters = Annotated[int, msgspec.Meta(ge=0, le=20)]
Vix = Annotated[float, msgspec.Meta(ge=5.0, le=90.0)]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class Scan(WireStruct, frozen=True):
    """One scan as the scanner is about to run it (DESIGN.md, "The scan")."""

    user_id: Id
    session_id: Id
    universe: Universe
    strategy: Strategy
    timeframe: Timeframe
    lookback_bars: Lookback
    min_price: Price
    max_price: Price
    min_avg_volume: Volume
    min_market_cap_musd: MarketCap
    min_abs_change_pct: ChangePct
    min_relative_volume: RelativeVolume
    rsi_min: Rsi
    rsi_max: Rsi
    n_extra_filters: ExtraFilters
    volatility_index: Vix
    # None means "now": the scanner may leave it out for a scan it is about to run.
    timestamp: AwareDatetime | None = None

    def __post_init__(self) -> None:
        # msgspec turns a ValueError here into a ValidationError naming the struct.
        if not self.min_price < self.max_price:
            raise ValueError(
                f"min_price ({self.min_price:g}) must be below max_price ({self.max_price:g})"
            )
        if not self.rsi_min < self.rsi_max:
            raise ValueError(f"rsi_min ({self.rsi_min:g}) must be below rsi_max ({self.rsi_max:g})")


class ScanOutcome(WireStruct, frozen=True):
    """What the scan really returned."""

    result_count: Annotated[int, msgspec.Meta(ge=0, le=max(UNIVERSE_SIZES.values()))]
    duration_s: Annotated[float, msgspec.Meta(gt=0.0, le=3600.0)]

    @property
    def empty(self) -> bool:
        return self.result_count == 0


class ScanRecord(Scan, frozen=True):
    """One line of scan history: the scan, its outcome and the noiseless expectations.

    Flat, as a scanner logs it. The expectations exist only in simulated history, where
    they give the oracle error floor; real history leaves them out.
    """

    timestamp: AwareDatetime  # history always knows when a scan ran
    result_count: Annotated[int, msgspec.Meta(ge=0, le=max(UNIVERSE_SIZES.values()))]
    duration_s: Annotated[float, msgspec.Meta(gt=0.0, le=3600.0)]
    expected_result_count: Annotated[float, msgspec.Meta(ge=0.0)] | None = None
    expected_duration_s: Annotated[float, msgspec.Meta(gt=0.0)] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        size = UNIVERSE_SIZES[self.universe]
        if self.result_count > size:
            raise ValueError(
                f"result_count ({self.result_count}) exceeds the {self.universe.value} "
                f"universe size ({size})"
            )

    def to_scan(self) -> Scan:
        """The scan alone, as the server would have seen it before it ran."""
        return Scan(**{f: getattr(self, f) for f in Scan.__struct_fields__})
