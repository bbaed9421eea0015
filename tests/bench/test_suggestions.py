"""The ground-truth suggestion benchmark: cases are the scans truly out of range, the top
suggestion is scored by train.market, and distinctness is pinned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.simulation.people import DESIRED_RANGES
from bench.suggestions import SuggestionScore, main, score_suggestions
from export.pipeline import build_version
from train.generate import generate_records
from train.habits import sample_scans
from train.market import expected_counts, scan_arrays


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real model version, exported by the offline pipeline."""
    root = tmp_path_factory.mktemp("suggestions")
    build_version(generate_records(1200, seed=0), root, seed=0, quick=True)
    return root


@pytest.mark.slow
def test_cases_are_the_scans_truly_out_of_range(artifacts: Path) -> None:
    """The benchmark's cases are exactly the drawn scans whose market expectation misses
    their drawn range; its counts add up; no answer holds a duplicate or a no-op."""
    score = score_suggestions(artifacts, 40, seed=5)
    rng = np.random.default_rng(5)
    scans = sample_scans(rng, 40)
    weights = np.asarray([w for *_, w in DESIRED_RANGES])
    picks = rng.choice(len(DESIRED_RANGES), size=len(scans), p=weights / weights.sum())
    truth = expected_counts(scan_arrays(scans))
    expected_cases = sum(
        not DESIRED_RANGES[i][0] <= t <= DESIRED_RANGES[i][1]
        for i, t in zip(picks, truth, strict=True)
    )
    assert isinstance(score, SuggestionScore)
    assert (score.scans, score.cases) == (40, expected_cases)
    assert score.landed + score.no_suggestion <= score.cases
    assert score.said_unreachable <= score.cases
    assert (score.duplicates, score.no_ops) == (0, 0)
    assert score.latency_ms_p95 >= score.latency_ms_median > 0


@pytest.mark.slow
def test_main_prints_the_table_and_exits_by_the_goals(
    artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command prints every figure and exits 0 or 1 by the goals, never crashes."""
    status = main(["--scans", "20", "--seed", "2", "--artifacts", str(artifacts)])
    out = capsys.readouterr().out
    assert status in (0, 1)
    assert "top suggestion lands in range" in out
    assert ("PASS" in out) == (status == 0)
