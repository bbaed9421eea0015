"""A reduced A/A run, so CI guards the statistics; the full run is `just aa`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench.aa
from bench.aa import main, run_aa
from bench.aa_checks import MAIN_METRICS, AaResult, AaSettings, Check, evaluate

# 300 re-randomizations: the band widens to 3 standard errors (1.2-8.8%), still far
# tighter than what a broken test gives (per-scan variances give 15-30%).
REDUCED = AaSettings(rerandomizations=300, n_users=4000, n_looks=7, band_z=3.0, seed=1)


@pytest.fixture(scope="module")
def reduced() -> AaResult:
    return run_aa(REDUCED)


def test_reduced_run_passes_every_check(reduced: AaResult) -> None:
    """FPR in band, uniform p-values, always-valid crossings <= alpha, SRM skew caught."""
    checks = evaluate(reduced)
    assert [c.name for c in checks if not c.passed] == []
    assert {o.metric for o in reduced.metrics if o.main} == set(MAIN_METRICS)


def test_peeking_inflates_and_the_sequential_test_does_not(reduced: AaResult) -> None:
    """Daily fixed-horizon p-values cross alpha far more often than alpha; always-valid do not."""
    for o in reduced.metrics:
        assert o.peeking_crossing_rate > 2 * REDUCED.alpha
        assert o.sequential_crossing_rate <= REDUCED.alpha


def test_cuped_metrics_report_a_variance_reduction(reduced: AaResult) -> None:
    """Metrics with a pre-period covariate run with CUPED and it removes variance."""
    cuped = {o.metric: o.cuped_variance_reduction for o in reduced.metrics if o.cuped}
    assert set(cuped) == {"empty_scan_rate", "scan_time_per_session_s", "scans_per_session"}
    assert all(v is not None and v > 0.05 for v in cuped.values())


def test_cli_writes_json_and_exits_by_the_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 0 with the JSON result when every check passes, 1 as soon as one fails."""
    out = tmp_path / "aa.json"
    args = ["--rerandomizations", "20", "--users", "500", "--looks", "2", "--out", str(out)]
    verdicts = {
        "pass": [Check(name="fine", value=0.0, high=1.0, passed=True)],
        "fail": [
            Check(name="fine", value=0.0, high=1.0, passed=True),
            Check(name="forced", value=1.0, high=0.0, passed=False),
        ],
    }
    for verdict, code in (("pass", 0), ("fail", 1)):
        monkeypatch.setattr(bench.aa, "evaluate", lambda _result, v=verdict: verdicts[v])
        assert main(args) == code
        data = json.loads(out.read_text())
        assert data["result"]["settings"]["rerandomizations"] == 20
        assert len(data["result"]["metrics"]) == 9
        assert [c["name"] for c in data["checks"]] == [c.name for c in verdicts[verdict]]


def test_the_correction_brings_the_family_wise_rate_down_to_alpha(reduced: AaResult) -> None:
    """Any of nine raw p < alpha happens in far more than alpha of runs; after Holm, not."""
    family = reduced.family
    assert family.metrics == 9
    assert family.raw_rate > 3 * REDUCED.alpha
    assert family.adjusted_rate <= 0.088  # the reduced run's band top (3 standard errors)
    assert family.sequential_adjusted_rate <= family.sequential_raw_rate
    assert family.sequential_adjusted_rate <= REDUCED.alpha
