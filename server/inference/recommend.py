"""Scan recommendations: score a few hundred neighbouring scans in one run, keep the best.

Neighbours change one parameter ("move") or two compatible ones: the price band, volume
and market-cap floors, move and relative-volume filters, the RSI band, the universe, the
timeframe and the number of extra filters. Loosening moves (more results) only pair with
loosening moves, tightening with tightening. Every move has a cost: 1 per parameter plus a
term growing with the size of the change, so small edits rank first.

Each candidate and the scan itself are scored together (lower is better)::

    score = 4.0 * miss + 2.0 * p_empty + 0.3 * ln(1 + duration_s) + 0.5 * cost

where `miss` is the distance of the predicted count, on a log scale, from the desired
range's safe zone: the range with `SAFE_MARGIN` of its log-width taken off each end (0
inside it). Aiming inside the range, not at its edge, is what makes a suggestion land
when the model is off by its usual error: measured by `just suggestions` against the
market's ground truth.

The search runs in two rounds of one onnxruntime run each: the scan's neighbours, then,
when none of them is predicted inside the safe zone, the neighbours of the best
`BEAM` of them (two steps away, for scans far from their range). Suggestions are distinct:
one whose predicted outcome equals the scan's or an earlier suggestion's is left out. A
suggestion is returned only if it beats the scan as sent; when none is predicted inside
the desired range itself, `unreachable` says so and the closest candidate is the first
suggestion (or none when nothing beats the scan as sent).
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

__all__ = [
    "BEAM",
    "FIRST_ROUND",
    "MAX_CANDIDATES",
    "SAFE_MARGIN",
    "Move",
    "neighbours",
    "recommend",
    "safe_zone",
]

MAX_CANDIDATES: Final = 250
FIRST_ROUND: Final = 150  # neighbours of the scan; the second round takes the rest
BEAM: Final = 4
SAFE_MARGIN: Final = 0.3
W_MISS: Final = 6.0
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
    # Every candidate is the scan with some fields changed, so the fields that differ from
    # the scan's name it: two combinations giving the same scan are told apart before one
    # is built (building checks the fields, ~2 us, and most pairs repeat a single move).
    seen: set[frozenset[tuple[str, Any]]] = set()
    combos = [((m,), m.cost) for m in moves] + [((a, b), a.cost + b.cost) for a, b in pairs]
    for combo, cost in combos:
        updates = {k: v for m in combo for k, v in m.updates.items()}
        key = frozenset((k, v) for k, v in updates.items() if getattr(scan, k) != v)
        if key in seen:
            continue
        seen.add(key)  # a scan that cannot be built fails the same way the next time
        try:
            candidate = msgspec.structs.replace(scan, **updates)
        except ValueError:  # the pair crossed a band (min above max): not a scan
            continue
        out.append(_Candidate(candidate, updates, cost))
        if len(out) >= limit:
            break
    return out


async def recommend(predictor: Predictor, request: RecommendRequest) -> RecommendResponse:
    """Score the scan and its neighbours (and theirs, when needed); the best distinct ones."""
    loop = asyncio.get_running_loop()
    now = datetime.now(UTC)
    scan, low, high = request.scan, request.min_results, request.max_results

    def build() -> tuple[list[_Candidate], npt.NDArray[np.float32]]:
        found = neighbours(scan, FIRST_ROUND)
        return found, served_matrix([scan, *(c.scan for c in found)], now)

    # Building and encoding a few hundred scans costs milliseconds: keep it off the loop.
    candidates, features = await loop.run_in_executor(None, build)
    model, outputs = await predictor.run(features)
    rows = list(zip(*(out.tolist() for out in outputs), strict=True))
    scores = score(outputs, np.array([0.0, *(c.cost for c in candidates)]), low, high)
    safe_low, safe_high = safe_zone(low, high)
    if not any(safe_low <= row[0] <= safe_high for row in rows[1:]):
        best = [int(i) + 1 for i in np.argsort(scores[1:], kind="stable")[:BEAM]]
        starts = [candidates[i - 1] for i in best]

        def build_more() -> tuple[list[_Candidate], npt.NDArray[np.float32]]:
            more = _second_round(scan, starts, candidates, MAX_CANDIDATES - len(candidates))
            return more, served_matrix([c.scan for c in more], now)

        more, more_features = await loop.run_in_executor(None, build_more)
        if more:
            again, more_outputs = await predictor.run(more_features)
            if again.version == model.version:  # a reload in between: keep round one only
                candidates += more
                rows += list(zip(*(out.tolist() for out in more_outputs), strict=True))
                more_costs = np.array([c.cost for c in more])
                scores = np.concatenate([scores, score(more_outputs, more_costs, low, high)])
    current_score = float(scores[0])
    suggestions: list[Suggestion] = []
    seen = {rows[0]}
    for i in np.argsort(scores[1:], kind="stable") + 1:
        if len(suggestions) >= request.limit or scores[i] >= current_score:
            break
        changes = _changes(scan, candidates[i - 1].updates)
        if not changes or rows[i] in seen:  # a no-op, or the same outcome as one shown
            continue
        seen.add(rows[i])
        suggestions.append(
            Suggestion(
                scan=candidates[i - 1].scan,
                prediction=outcome_of(rows[i]),
                changes=changes,
                score=float(scores[i]),
            )
        )
    count = rows[0][0]
    if predictor.drift is not None:  # the user's own scan is traffic; its neighbours are not
        predictor.drift.observe_row(model.version, features[0], rows[0])
    in_range = low <= count <= high
    lands = any(low <= s.prediction.result_count.predicted <= high for s in suggestions)
    unreachable = not in_range and not lands
    return RecommendResponse(
        model_version=model.version,
        current=outcome_of(rows[0]),
        current_in_range=in_range,
        current_score=current_score,
        suggestions=suggestions,
        candidates_scored=len(candidates),
        unreachable=unreachable,
        note=_unreachable_note(low, high, suggestions, count) if unreachable else None,
    )


def safe_zone(low: int, high: int) -> tuple[float, float]:
    """The desired range without `SAFE_MARGIN` of its log-width at each end."""
    log_low, log_high = math.log1p(low), math.log1p(high)
    margin = SAFE_MARGIN * (log_high - log_low)
    return math.expm1(log_low + margin), math.expm1(log_high - margin)


def score(
    outputs: Outputs, costs: npt.NDArray[np.float64], low: int, high: int
) -> npt.NDArray[np.float64]:
    """The ranking score of every row (module docstring); lower is better."""
    safe_low, safe_high = safe_zone(low, high)
    count = outputs[0].astype(np.float64)
    duration = outputs[3].astype(np.float64)
    p_empty = outputs[6].astype(np.float64)
    below = np.log((safe_low + 1.0) / (np.maximum(count, 0.0) + 1.0))
    above = np.log((np.maximum(count, 0.0) + 1.0) / (safe_high + 1.0))
    miss = np.maximum(np.maximum(below, above), 0.0)
    return (
        W_MISS * miss
        + W_EMPTY * p_empty
        + W_DURATION * np.log1p(np.maximum(duration, 0.0))
        + W_COST * costs
    )


def _second_round(
    scan: Scan, starts: list[_Candidate], known: list[_Candidate], budget: int
) -> list[_Candidate]:
    """Neighbours of the best first-round candidates: two steps from the scan."""
    seen = {msgspec.json.encode(scan), *(msgspec.json.encode(c.scan) for c in known)}
    out: list[_Candidate] = []
    per_start = max(budget // max(len(starts), 1), 1)
    for start in starts:
        for step in neighbours(start.scan, per_start):
            key = msgspec.json.encode(step.scan)
            if key in seen:
                continue
            seen.add(key)
            updates = {**start.updates, **step.updates}
            out.append(_Candidate(step.scan, updates, start.cost + step.cost))
    return out[:budget]


def _unreachable_note(low: int, high: int, suggestions: list[Suggestion], count: float) -> str:
    if suggestions:
        closest = suggestions[0].prediction.result_count.predicted
        return (
            f"no change within reach is predicted to give {low}-{high} results; the closest "
            f"(the first suggestion) is predicted to give {closest:.1f} (as sent: {count:.1f})"
        )
    return (
        f"no change within reach is predicted to give {low}-{high} results, nor to come "
        f"closer than the scan as sent ({count:.1f})"
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
