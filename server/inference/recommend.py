"""Scan recommendations: score a few hundred neighbouring scans in one run, keep the best.

Neighbours change one parameter ("move") or two compatible ones: the price band, volume
and market-cap floors, move and relative-volume filters, the RSI band, the universe, the
timeframe and the number of extra filters. Loosening moves (more results) only pair with
loosening moves, tightening with tightening. Every move has a cost: 1 per parameter plus a
term growing with the size of the change, so small edits rank first.

Each candidate and the scan itself are scored together (lower is better)::

    score = 4.0 * miss + 2.0 * p_empty + 0.3 * ln(1 + duration_s) + 0.5 * cost

where `miss` is the distance of the predicted count from the desired range on a log
scale (0 inside it). A suggestion is returned only if it beats the scan as sent.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import combinations
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from server.domain.scan import TIMEFRAME_MINUTES, UNIVERSE_SIZES, Scan, Timeframe, Universe
from server.inference.clock import served_matrix
from server.inference.model import Outputs
from server.inference.predictor import Predictor, outcome_of
from server.schemas import Change, RecommendRequest, RecommendResponse, Suggestion

__all__ = ["MAX_CANDIDATES", "Move", "neighbours", "recommend"]

MAX_CANDIDATES: Final = 300
W_MISS: Final = 4.0
W_EMPTY: Final = 2.0
W_DURATION: Final = 0.3
W_COST: Final = 0.5
LOOSEN: Final = 1
TIGHTEN: Final = -1
EITHER: Final = 0

# ">= value" filters: (field, typical unit for the size of a change, upper bound, values
# to try when the filter is off)
_FLOORS: Final = (
    ("min_avg_volume", 100_000.0, 1e12, (100_000.0, 500_000.0)),
    ("min_market_cap_musd", 100.0, 1e8, (300.0, 2_000.0)),
    ("min_abs_change_pct", 0.5, 50.0, (1.0, 3.0)),
    ("min_relative_volume", 0.5, 20.0, (1.5, 3.0)),
)


class Move(msgspec.Struct, frozen=True):
    """A change of one parameter (the RSI band counts as one): new values, direction, cost."""

    group: str
    updates: dict[str, Any]
    direction: int
    cost: float


class _Candidate(msgspec.Struct, frozen=True):
    scan: Scan
    updates: dict[str, Any]
    cost: float


def neighbours(scan: Scan, limit: int = MAX_CANDIDATES) -> list[_Candidate]:
    """Valid neighbouring scans, cheapest first: every single move, then compatible pairs."""
    moves = list(_moves(scan))
    pairs = [
        (a, b)
        for a, b in combinations(moves, 2)
        if a.group != b.group and a.direction * b.direction >= 0
    ]
    pairs.sort(key=lambda ab: ab[0].cost + ab[1].cost)
    out: list[_Candidate] = []
    seen: set[bytes] = set()
    combos = [((m,), m.cost) for m in moves] + [((a, b), a.cost + b.cost) for a, b in pairs]
    for combo, cost in combos:
        updates = {k: v for m in combo for k, v in m.updates.items()}
        try:
            candidate = msgspec.structs.replace(scan, **updates)
        except ValueError:  # the pair crossed a band (min above max): not a scan
            continue
        key = msgspec.json.encode(candidate)
        if key in seen:
            continue
        seen.add(key)
        out.append(_Candidate(candidate, updates, cost))
        if len(out) >= limit:
            break
    return out


async def recommend(predictor: Predictor, request: RecommendRequest) -> RecommendResponse:
    """Score the scan and its neighbours in one run and return the best changes."""
    loop = asyncio.get_running_loop()
    now = datetime.now(UTC)

    def build() -> tuple[list[_Candidate], npt.NDArray[np.float32]]:
        found = neighbours(request.scan)
        return found, served_matrix([request.scan, *(c.scan for c in found)], now)

    # Building and encoding ~300 scans costs milliseconds: keep it off the event loop.
    candidates, features = await loop.run_in_executor(None, build)
    model, outputs = await predictor.run(features)
    costs = np.array([0.0, *(c.cost for c in candidates)])
    scores = score(outputs, costs, request.min_results, request.max_results)
    columns = [out.tolist() for out in outputs]
    rows = list(zip(*columns, strict=True))
    current_score = float(scores[0])
    order = [i for i in np.argsort(scores[1:], kind="stable") + 1 if scores[i] < current_score]
    suggestions = [
        Suggestion(
            scan=candidates[i - 1].scan,
            prediction=outcome_of(rows[i]),
            changes=_changes(request.scan, candidates[i - 1].updates),
            score=float(scores[i]),
        )
        for i in order[: request.limit]
    ]
    count = rows[0][0]
    return RecommendResponse(
        model_version=model.version,
        current=outcome_of(rows[0]),
        current_in_range=request.min_results <= count <= request.max_results,
        current_score=current_score,
        suggestions=suggestions,
        candidates_scored=len(candidates),
    )


def score(
    outputs: Outputs, costs: npt.NDArray[np.float64], low: int, high: int
) -> npt.NDArray[np.float64]:
    """The ranking score of every row (module docstring); lower is better."""
    count = outputs[0].astype(np.float64)
    duration = outputs[3].astype(np.float64)
    p_empty = outputs[6].astype(np.float64)
    below = np.log((low + 1.0) / (np.maximum(count, 0.0) + 1.0))
    above = np.log((np.maximum(count, 0.0) + 1.0) / (high + 1.0))
    miss = np.maximum(np.maximum(below, above), 0.0)
    return (
        W_MISS * miss
        + W_EMPTY * p_empty
        + W_DURATION * np.log1p(np.maximum(duration, 0.0))
        + W_COST * costs
    )


def _moves(scan: Scan) -> Iterator[Move]:
    yield from _band_moves(scan)
    for field, unit, cap, starts in _FLOORS:
        value: float = getattr(scan, field)
        if value > 0:
            targets = [(value * f, LOOSEN) for f in (0.5, 0.2)] + [(0.0, LOOSEN)]
            targets += [(value * f, TIGHTEN) for f in (2.0, 5.0) if value * f <= cap]
        else:
            targets = [(s, TIGHTEN) for s in starts]
        for new, direction in targets:
            new = _nice(new)
            yield Move(field, {field: new}, direction, 1.0 + 0.3 * _log_step(value, new, unit))
    size = UNIVERSE_SIZES[scan.universe]
    for universe in Universe:
        if universe is not scan.universe:
            ratio = UNIVERSE_SIZES[universe] / size
            direction = LOOSEN if ratio > 1 else TIGHTEN
            yield Move(
                "universe", {"universe": universe}, direction, 1.0 + 0.2 * abs(math.log(ratio))
            )
    minutes = TIMEFRAME_MINUTES[scan.timeframe]
    for timeframe in Timeframe:
        if timeframe is not scan.timeframe:
            ratio = TIMEFRAME_MINUTES[timeframe] / minutes
            yield Move(
                "timeframe", {"timeframe": timeframe}, EITHER, 1.0 + 0.2 * abs(math.log(ratio))
            )
    n = scan.n_extra_filters
    for new, direction in (
        (n - 1, LOOSEN),
        (n - 2, LOOSEN),
        (0, LOOSEN),
        (n + 1, TIGHTEN),
        (n + 2, TIGHTEN),
    ):
        if 0 <= new <= 20 and new != n:
            yield Move(
                "n_extra_filters", {"n_extra_filters": new}, direction, 1.0 + 0.2 * abs(new - n)
            )


def _band_moves(scan: Scan) -> Iterator[Move]:
    lo, hi = scan.min_price, scan.max_price
    floors = [(lo * 0.5, LOOSEN), (lo * 0.2, LOOSEN), (0.0, LOOSEN)] if lo > 0 else []
    floors += [(lo * f, TIGHTEN) for f in (2.0, 4.0) if 0 < lo * f < hi]
    for new, direction in floors:
        new = _nice(new)
        if new != lo:
            yield Move(
                "min_price", {"min_price": new}, direction, 1.0 + 0.3 * _log_step(lo, new, 1.0)
            )
    ceilings = [(hi * f, LOOSEN) for f in (2.0, 4.0) if hi * f <= 1_000_000.0]
    ceilings += [(hi * f, TIGHTEN) for f in (0.5, 0.25) if hi * f > lo]
    for new, direction in ceilings:
        new = _nice(new)
        if new != hi:
            yield Move(
                "max_price", {"max_price": new}, direction, 1.0 + 0.3 * _log_step(hi, new, 1.0)
            )
    rmin, rmax = scan.rsi_min, scan.rsi_max
    for step, direction in ((10.0, LOOSEN), (20.0, LOOSEN), (-5.0, TIGHTEN), (-10.0, TIGHTEN)):
        new_min, new_max = max(0.0, rmin - step), min(100.0, rmax + step)
        if new_max - new_min >= 5.0 and (new_min, new_max) != (rmin, rmax):
            width_change = abs((new_max - new_min) - (rmax - rmin)) / 50.0
            updates = {"rsi_min": new_min, "rsi_max": new_max}
            yield Move("rsi", updates, direction, 1.0 + width_change)


def _log_step(old: float, new: float, unit: float) -> float:
    """Size of a change on a log scale, `unit` keeping zero finite; capped at 5."""
    return min(abs(math.log((new + unit) / (old + unit))), 5.0)


def _nice(value: float) -> float:
    """Three significant digits: suggestions people can read and type."""
    if value <= 0:
        return 0.0
    return float(f"{value:.3g}")


def _changes(scan: Scan, updates: dict[str, Any]) -> list[Change]:
    changes = []
    for field, new in updates.items():
        old = getattr(scan, field)
        if old != new:
            changes.append(Change(field=field, from_=_plain(old), to=_plain(new)))
    return changes


def _plain(value: Any) -> str | int | float:
    if isinstance(value, Universe | Timeframe):
        return value.value
    if isinstance(value, int | float | str):
        return value
    raise TypeError(f"unexpected value {value!r}")
