"""The feature encoding: one scan in, one float32 row out, the same offline and online.

The spec (names, order, kinds, ranges) is written into every model's manifest; the server
refuses a model whose spec differs from `FEATURE_SPEC`, so a model can never be fed
columns in an order it was not trained on.

Categories are one-hot columns, never native categorical splits: skl2onnx (1.18-1.20)
converts HistGradientBoosting's `categorical_features` silently wrong, which the export's
parity check against scikit-learn catches.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time
from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import numpy.typing as npt

from server.domain.scan import (
    TIMEFRAME_MINUTES,
    UNIVERSE_SIZES,
    Scan,
    Strategy,
    Timeframe,
    Universe,
)

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_SPEC",
    "N_FEATURES",
    "FeatureSpec",
    "encode_row",
    "encode_scans",
    "feature_spec_digest",
    "session_clock",
]

MARKET_TZ: Final = ZoneInfo("America/New_York")
MARKET_OPEN: Final = time(9, 30)
SESSION_MINUTES: Final = 390


def _doc(text: str) -> msgspec.Meta:
    """A field's description (meaning and unit), for the OpenAPI document."""
    return msgspec.Meta(description=text)


class FeatureSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One model input column: what it is, its kind and the values it can take."""

    name: Annotated[str, _doc("the input column's name")]
    kind: Annotated[
        Literal["numeric", "binary", "ordinal"], _doc("numeric, binary (0 or 1) or ordinal")
    ]
    source: Annotated[str, _doc("the Scan field the column is computed from")]
    min: Annotated[
        float | None, _doc("lowest value the column takes, in its own unit; null when unbounded")
    ] = None
    max: Annotated[
        float | None, _doc("highest value the column takes, in its own unit; null when unbounded")
    ] = None


def _spec() -> tuple[FeatureSpec, ...]:
    size_max = float(max(UNIVERSE_SIZES.values()))
    spec: list[FeatureSpec] = [
        FeatureSpec(name="universe_size", kind="numeric", source="universe", min=101, max=size_max)
    ]
    spec += [
        FeatureSpec(name=f"universe_is_{u.value}", kind="binary", source="universe", min=0, max=1)
        for u in Universe
    ]
    spec += [
        FeatureSpec(name=f"strategy_is_{s.value}", kind="binary", source="strategy", min=0, max=1)
        for s in Strategy
    ]
    spec += [
        FeatureSpec(name="timeframe_minutes", kind="ordinal", source="timeframe", min=1, max=390),
        FeatureSpec(name="lookback_bars", kind="numeric", source="lookback_bars", min=10, max=500),
        FeatureSpec(name="min_price", kind="numeric", source="min_price", min=0, max=1e6),
        FeatureSpec(name="max_price", kind="numeric", source="max_price", min=0, max=1e6),
        FeatureSpec(
            name="log_price_band_ratio",
            kind="numeric",
            source="ln((max_price + 0.01) / (min_price + 0.01))",
            min=0,
            max=math.log(1e6 / 0.01),
        ),
        FeatureSpec(
            name="min_avg_volume", kind="numeric", source="min_avg_volume", min=0, max=1e12
        ),
        FeatureSpec(
            name="min_market_cap_musd", kind="numeric", source="min_market_cap_musd", min=0, max=1e8
        ),
        FeatureSpec(
            name="min_abs_change_pct", kind="numeric", source="min_abs_change_pct", min=0, max=50
        ),
        FeatureSpec(
            name="min_relative_volume", kind="numeric", source="min_relative_volume", min=0, max=20
        ),
        FeatureSpec(name="rsi_min", kind="numeric", source="rsi_min", min=0, max=100),
        FeatureSpec(name="rsi_max", kind="numeric", source="rsi_max", min=0, max=100),
        FeatureSpec(name="rsi_width", kind="numeric", source="rsi_max - rsi_min", min=0, max=100),
        FeatureSpec(
            name="n_extra_filters", kind="ordinal", source="n_extra_filters", min=0, max=20
        ),
        FeatureSpec(
            name="volatility_index", kind="numeric", source="volatility_index", min=5, max=90
        ),
        FeatureSpec(
            name="minutes_since_open",
            kind="numeric",
            source="timestamp (America/New_York, minutes after 09:30)",
            min=-570,
            max=870,
        ),
        FeatureSpec(name="weekday", kind="ordinal", source="timestamp (Monday = 0)", min=0, max=6),
        FeatureSpec(
            name="market_open",
            kind="binary",
            source="timestamp (weekday, 09:30-16:00 New York)",
            min=0,
            max=1,
        ),
        FeatureSpec(
            name="symbol_bars",
            kind="numeric",
            source="universe size x lookback_bars",
            min=101 * 10,
            max=size_max * 500,
        ),
    ]
    return tuple(spec)


FEATURE_SPEC: Final[tuple[FeatureSpec, ...]] = _spec()
FEATURE_NAMES: Final[tuple[str, ...]] = tuple(f.name for f in FEATURE_SPEC)
N_FEATURES: Final = len(FEATURE_SPEC)

_UNIVERSE_COLS: Final[dict[Universe, tuple[float, ...]]] = {
    u: (float(UNIVERSE_SIZES[u]), *(1.0 if v is u else 0.0 for v in Universe)) for u in Universe
}
_STRATEGY_COLS: Final[dict[Strategy, tuple[float, ...]]] = {
    s: tuple(1.0 if v is s else 0.0 for v in Strategy) for s in Strategy
}
_TIMEFRAME_COL: Final[dict[Timeframe, float]] = {t: float(m) for t, m in TIMEFRAME_MINUTES.items()}


def session_clock(ts: datetime) -> tuple[float, float, float]:
    """(minutes since the 09:30 New York open, weekday, market open 0/1) of a UTC instant."""
    local = ts.astimezone(MARKET_TZ)
    minutes = (local.hour - MARKET_OPEN.hour) * 60 + (local.minute - MARKET_OPEN.minute)
    minutes_f = minutes + local.second / 60.0
    weekday = local.weekday()
    is_open = weekday < 5 and 0.0 <= minutes_f < SESSION_MINUTES
    return minutes_f, float(weekday), 1.0 if is_open else 0.0


def encode_row(scan: Scan, now: datetime | None = None) -> list[float]:
    """The feature row of one scan, in `FEATURE_NAMES` order.

    `now` stands in for a missing timestamp (a scan about to run); it defaults to the clock.
    """
    ts = scan.timestamp or now or datetime.now(UTC)
    minutes, weekday, is_open = session_clock(ts)
    universe = _UNIVERSE_COLS[scan.universe]
    return [
        *universe,
        *_STRATEGY_COLS[scan.strategy],
        _TIMEFRAME_COL[scan.timeframe],
        float(scan.lookback_bars),
        scan.min_price,
        scan.max_price,
        math.log((scan.max_price + 0.01) / (scan.min_price + 0.01)),
        scan.min_avg_volume,
        scan.min_market_cap_musd,
        scan.min_abs_change_pct,
        scan.min_relative_volume,
        scan.rsi_min,
        scan.rsi_max,
        scan.rsi_max - scan.rsi_min,
        float(scan.n_extra_filters),
        scan.volatility_index,
        minutes,
        weekday,
        is_open,
        universe[0] * scan.lookback_bars,
    ]


def encode_scans(scans: Iterable[Scan], now: datetime | None = None) -> npt.NDArray[np.float32]:
    """The float32 feature matrix (n, N_FEATURES) of many scans; models take exactly this."""
    rows = [encode_row(s, now) for s in scans]
    if not rows:
        return np.empty((0, N_FEATURES), dtype=np.float32)
    return np.asarray(rows, dtype=np.float32)


def feature_spec_digest(spec: Sequence[FeatureSpec] = FEATURE_SPEC) -> str:
    """sha256 of the canonical JSON of a feature spec: equal digests mean equal contracts."""
    return hashlib.sha256(msgspec.json.encode(list(spec))).hexdigest()
