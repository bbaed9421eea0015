"""Recommendations: a few hundred valid neighbours, small changes first, one batched run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from server.domain.scan import Scan
from server.inference.predictor import Predictor
from server.inference.recommend import MAX_CANDIDATES, neighbours, recommend
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
    assert answer.candidates_scored == len(neighbours(BASE))
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


def test_recommend_scores_all_candidates_in_one_run(predictor: Predictor, metrics: Metrics) -> None:
    """The scan and its neighbours go through onnxruntime together, once."""

    def batch_size(stat: str) -> float:
        return metrics.registry.get_sample_value(f"scanopt_batch_size_{stat}") or 0.0

    runs, rows = batch_size("count"), batch_size("sum")
    answer = asyncio.run(recommend(predictor, RecommendRequest(scan=BASE)))
    assert batch_size("count") - runs == 1
    assert batch_size("sum") - rows == answer.candidates_scored + 1


def test_recommend_counts_only_the_users_scan_for_drift(predictor: Predictor) -> None:
    """The user's own scan is kept for drift once; the neighbours it scored are not."""
    predictor.drift = DriftCounter()
    answer = asyncio.run(recommend(predictor, RecommendRequest(scan=BASE)))
    assert answer.candidates_scored > 1
    assert predictor.drift.pending == 1
