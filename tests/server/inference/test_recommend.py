"""Recommendations: a few hundred valid neighbours, small changes first, at most two
batched runs, distinct suggestions aimed inside the range, unreachable ranges said."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import msgspec
import pytest

from server.domain.scan import Scan
from server.inference.predictor import Predictor
from server.inference.recommend import (
    FIRST_ROUND,
    MAX_CANDIDATES,
    SAFE_MARGIN,
    neighbours,
    recommend,
    safe_zone,
)
from server.monitoring.counts import DriftCounter
from server.monitoring.metrics import Metrics
from server.schemas import RecommendRequest
from tests.server.conftest import SCAN, make_settings

BASE = msgspec.convert(SCAN, Scan)


def test_neighbours_are_a_few_hundred_valid_scans() -> None:
    """Every candidate passes the scan schema (ranges, bands) and differs from the scan."""
    found = neighbours(BASE)
    assert 100 <= len(found) <= MAX_CANDIDATES
    for candidate in found:
        # A JSON round trip runs every Meta range check and __post_init__ rule.
        msgspec.json.decode(msgspec.json.encode(candidate.scan), type=Scan)
        assert candidate.scan != BASE
    assert len({msgspec.json.encode(c.scan) for c in found}) == len(found)


def test_single_changes_come_before_pairs_and_cost_grows() -> None:
    """Candidates are ordered by cost within singles and within pairs; singles come first."""
    found = neighbours(BASE)
    sizes = [len({k.split("_")[0] if k.startswith("rsi") else k for k in c.updates}) for c in found]
    first_pair = sizes.index(2)
    assert all(n == 1 for n in sizes[:first_pair])
    assert all(n == 2 for n in sizes[first_pair:])
    pair_costs = [c.cost for c in found[first_pair:]]
    assert pair_costs == sorted(pair_costs)


def test_floors_at_zero_only_tighten() -> None:
    """A filter that is off (0) is only ever switched on, never "lowered"."""
    off = msgspec.structs.replace(BASE, min_avg_volume=0.0)
    values = {c.updates["min_avg_volume"] for c in neighbours(off) if "min_avg_volume" in c.updates}
    assert values
    assert all(v > 0 for v in values)


@pytest.fixture
def metrics(artifacts: Path) -> Metrics:
    return Metrics(make_settings(artifacts))


@pytest.fixture
def predictor(artifacts: Path, metrics: Metrics) -> Predictor:
    p = Predictor(make_settings(artifacts), metrics)
    p.install(p.load())
    return p


def test_recommend_returns_better_scored_suggestions(predictor: Predictor) -> None:
    """Each suggestion beats the scan as sent, the list is sorted, its changes are real."""
    request = RecommendRequest(scan=BASE, min_results=5, max_results=100, limit=5)
    answer = asyncio.run(recommend(predictor, request))
    assert answer.model_version == predictor.model.version
    assert answer.candidates_scored >= len(neighbours(BASE, FIRST_ROUND))
    assert answer.candidates_scored <= MAX_CANDIDATES
    scores = [s.score for s in answer.suggestions]
    assert scores == sorted(scores)
    assert all(score < answer.current_score for score in scores)
    assert len(answer.suggestions) <= 5
    for suggestion in answer.suggestions:
        assert suggestion.changes
        for change in suggestion.changes:
            now = getattr(suggestion.scan, change.field)
            before = getattr(BASE, change.field)
            assert change.to == getattr(now, "value", now)
            assert change.from_ == getattr(before, "value", before)


def test_recommend_scores_candidates_in_at_most_two_runs(
    predictor: Predictor, metrics: Metrics
) -> None:
    """The scan and its neighbours go through onnxruntime together, and the second round
    (two steps away) in one more run at most; every candidate is scored once."""

    def batch_size(stat: str) -> float:
        return metrics.registry.get_sample_value(f"scanopt_batch_size_{stat}") or 0.0

    for wanted in ((5, 100), (150, 400)):  # near the scan, and far from it
        runs, rows = batch_size("count"), batch_size("sum")
        request = RecommendRequest(scan=BASE, min_results=wanted[0], max_results=wanted[1])
        answer = asyncio.run(recommend(predictor, request))
        assert batch_size("count") - runs in (1, 2)
        assert batch_size("sum") - rows == answer.candidates_scored + 1


def test_recommend_counts_only_the_users_scan_for_drift(predictor: Predictor) -> None:
    """The user's own scan is kept for drift once; the neighbours it scored are not."""
    predictor.drift = DriftCounter()
    answer = asyncio.run(recommend(predictor, RecommendRequest(scan=BASE)))
    assert answer.candidates_scored > 1
    assert predictor.drift.pending == 1


def test_suggestions_have_distinct_outcomes_and_real_changes(predictor: Predictor) -> None:
    """No answer holds two suggestions predicting the same outcome, or one predicting what
    the scan as sent predicts, over many scans and ranges."""
    for lookback in (10, 50, 200, 500):
        for low, high in ((1, 20), (5, 50), (10, 100), (100, 400)):
            scan = msgspec.structs.replace(BASE, lookback_bars=lookback)
            request = RecommendRequest(scan=scan, min_results=low, max_results=high, limit=5)
            answer = asyncio.run(recommend(predictor, request))
            outcomes = [msgspec.json.encode(s.prediction) for s in answer.suggestions]
            assert len(set(outcomes)) == len(outcomes)
            assert msgspec.json.encode(answer.current) not in outcomes
            assert all(s.changes for s in answer.suggestions)


def test_an_unreachable_range_is_said_with_the_closest_candidate(predictor: Predictor) -> None:
    """A range no change can reach (1,900-2,000 results of a 503-symbol universe) gets
    unreachable, a note naming the range, and the closest candidate first."""
    request = RecommendRequest(scan=BASE, min_results=1900, max_results=2000)
    answer = asyncio.run(recommend(predictor, request))
    assert answer.unreachable
    assert answer.note is not None
    assert "1900-2000 results" in answer.note
    if answer.suggestions:
        assert "the closest (the first suggestion)" in answer.note
    usual = asyncio.run(recommend(predictor, RecommendRequest(scan=BASE)))
    lands = any(5 <= s.prediction.result_count.predicted <= 100 for s in usual.suggestions)
    assert usual.unreachable == (not usual.current_in_range and not lands)
    assert (usual.note is None) == (not usual.unreachable)


def test_the_safe_zone_is_inside_the_range_on_a_log_scale() -> None:
    """SAFE_MARGIN of the log-width comes off each end: [10, 100] -> about [20, 51]."""
    low, high = safe_zone(10, 100)
    assert 10 < low < high < 100
    width = math.log1p(100) - math.log1p(10)
    assert math.log1p(low) - math.log1p(10) == pytest.approx(SAFE_MARGIN * width)
    assert math.log1p(100) - math.log1p(high) == pytest.approx(SAFE_MARGIN * width)
