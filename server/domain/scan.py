"""The scan: one definition of every field, enum and range.

Training, export and serving all import this module, so a field cannot mean one thing
offline and another online. It imports nothing but the standard library and msgspec.
"""

from __future__ import annotations

import enum
import threading
import typing
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import msgspec

__all__ = [
    "DECODING",
    "EARLIEST_TIMESTAMP",
    "ID_PATTERN",
    "ID_RULE",
    "MAX_CLOCK_SKEW",
    "NAME_PATTERN",
    "NAME_RULE",
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
    "check_fields",
    "timestamp_problem",
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
ID_RULE: Final = (
    "expected an id without control characters (NUL, C0, DEL, C1) or Unicode "
    "bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069)"
)
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
NAME_PATTERN: Final = r"^[A-Za-z0-9_.-]+$"
NAME_RULE: Final = "expected a name of letters, digits, '_', '.' and '-'"
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=NAME_PATTERN)]
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

# The instants a scanner can send: nothing before electronic scanners existed, and no more
# than a clock-skew allowance ahead of the server (a clock further ahead is broken, and its
# rows would distort every time window). Scans and events share this one rule.
EARLIEST_TIMESTAMP: Final = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW: Final = timedelta(hours=1)


def timestamp_problem(ts: datetime, now: datetime | None = None) -> str | None:
    """Why `ts` is not an instant a scanner can send (None when it is), with the range."""
    now = now or datetime.now(UTC)
    if EARLIEST_TIMESTAMP <= ts <= now + MAX_CLOCK_SKEW:
        return None
    return (
        f"timestamp ({ts.isoformat()}) is outside what a scanner can send: expected from "
        f"{EARLIEST_TIMESTAMP.isoformat()} to {MAX_CLOCK_SKEW.total_seconds() / 3600:g} h "
        "after the server's clock "
        f"(now {now.isoformat(timespec='seconds')})"
    )


_TIMESTAMP_DOC: Final = (
    "when the scan runs, ISO-8601 UTC (an offset is required); left out: the server's "
    f"clock. Range: {EARLIEST_TIMESTAMP:%Y-%m-%d} to "
    f"{MAX_CLOCK_SKEW.total_seconds() / 3600:g} h after the server's clock"
)
_UNIVERSE_DOC: Final = ", ".join(f"{u.value} {n:,}" for u, n in UNIVERSE_SIZES.items()) + " symbols"


def _doc(text: str) -> msgspec.Meta:
    """A field's description (meaning and unit), for the OpenAPI document."""
    return msgspec.Meta(description=text)


_SHAPES: dict[type[msgspec.Struct], type[msgspec.Struct]] = {}


def _shape_of(cls: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A twin of `cls` with the same annotated fields (so the same rules) and no hooks."""
    shape = _SHAPES.get(cls)
    if shape is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
            (f.name, hints[f.name]) if f.required else (f.name, hints[f.name], f.default)
            for f in msgspec.structs.fields(cls)
        ]
        shape = msgspec.defstruct(f"{cls.__name__}Fields", fields, kw_only=True)
        _SHAPES[cls] = shape
    return shape


def check_fields(struct: msgspec.Struct) -> None:
    """Check a struct built in Python against its own annotations, as decoding would.

    msgspec applies `Meta` constraints only when decoding or converting; calling this from
    `__post_init__` makes `Scan(lookback_bars=5, ...)` fail the same way a body does,
    raising the decoder's own `msgspec.ValidationError` (for example "Expected `int` >= 10
    - at `$.lookback_bars`"). The rules stay where they are declared: the annotations.
    Reads the fields as attributes in msgspec's C code: about 1.8 us a scan here, against
    3.4 us for building a dict of them first (timeit, best of 5 x 20,000).
    """
    msgspec.convert(struct, _shape_of(type(struct)), from_attributes=True)


class _Decoding(threading.local):
    """`active` while msgspec decodes a body on this thread (`server.schemas.decode_body`).

    The decoder checks every field against its annotation before it calls
    `__post_init__`, so a decoded scan skips `check_fields`, which would only repeat it
    (about 2 us of a prediction's ~50 in process). Per thread: a scan built in Python on
    another thread meanwhile (the recommendations' neighbours) is still checked.
    """

    active = False


DECODING: Final = _Decoding()


class Scan(WireStruct, frozen=True):
    """One scan as the scanner is about to run it: who scans, over which universe, with
    which strategy, timeframe and filters, at what time and market volatility."""

    # Each description gives the meaning and the unit; the OpenAPI document adds the range
    # from the constraints themselves (server.docs.openapi), so no number is written twice.
    user_id: Annotated[Id, _doc("who scans: the A/B assignment key")]
    session_id: Annotated[Id, _doc("the scanner session the scan belongs to")]
    universe: Annotated[Universe, _doc(f"the symbol list scanned ({_UNIVERSE_DOC})")]
    strategy: Annotated[Strategy, _doc("the scanner's built-in strategy")]
    timeframe: Annotated[Timeframe, _doc("bar size; 1d is one whole session")]
    lookback_bars: Annotated[Lookback, _doc("history each symbol needs, in bars")]
    min_price: Annotated[Price, _doc("lowest last price, USD; below max_price")]
    max_price: Annotated[Price, _doc("highest last price, USD; above min_price")]
    min_avg_volume: Annotated[Volume, _doc("average daily volume floor, shares")]
    min_market_cap_musd: Annotated[MarketCap, _doc("market-cap floor, millions of USD")]
    min_abs_change_pct: Annotated[ChangePct, _doc("least absolute move, percent")]
    min_relative_volume: Annotated[
        RelativeVolume, _doc("least volume relative to its average, ratio (1 = average)")
    ]
    rsi_min: Annotated[Rsi, _doc("RSI band lower bound, RSI points; below rsi_max")]
    rsi_max: Annotated[Rsi, _doc("RSI band upper bound, RSI points; above rsi_min")]
    n_extra_filters: Annotated[ExtraFilters, _doc("custom filters the user added, count")]
    volatility_index: Annotated[Vix, _doc("market regime, VIX points")]
    # None means "now": the scanner may leave it out for a scan it is about to run.
    timestamp: Annotated[AwareDatetime | None, _doc(_TIMESTAMP_DOC)] = None

    def __post_init__(self) -> None:
        # Decoding has checked the annotations already; a scan built in Python has not.
        if not DECODING.active:
            check_fields(self)
        # msgspec turns a ValueError here into a ValidationError naming the struct.
        if self.timestamp is not None and (problem := timestamp_problem(self.timestamp)):
            raise ValueError(problem)
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
