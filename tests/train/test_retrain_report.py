"""train.retrain_report: worst slices and the Markdown/HTML/PNG report."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tests.train.retrain_inputs import report_inputs
from train.retrain_report import MIN_SLICE_ROWS, worst_slices, write_report


def _scored(slices: dict[tuple[str, str, str], tuple[int, float]]) -> pl.DataFrame:
    """Holdout rows: each slice with n rows whose challenger errs by `error` results."""
    rows = []
    for (universe, strategy, timeframe), (n, error) in slices.items():
        rows += [
            {
                "user": f"u{i}",
                "universe": universe,
                "strategy": strategy,
                "timeframe": timeframe,
                "result_count": 10.0,
                "duration_s": 2.0,
                "champion_result_count": 10.0 + 2 * error,
                "challenger_result_count": 10.0 + error,
                "challenger_duration_s": 2.5,
            }
            for i in range(n)
        ]
    return pl.DataFrame(rows)


def test_worst_slices_rank_by_challenger_error_and_skip_small_ones() -> None:
    """Worst first; a slice with fewer than MIN_SLICE_ROWS outcomes is not ranked."""
    scored = _scored(
        {
            ("sp500", "gap", "1d"): (MIN_SLICE_ROWS, 3.0),
            ("us_all", "momentum", "1m"): (MIN_SLICE_ROWS + 2, 9.0),
            ("etf_liquid", "gap", "5m"): (MIN_SLICE_ROWS - 1, 50.0),
        }
    )
    slices = worst_slices(scored)
    assert slices["universe"].to_list() == ["us_all", "sp500"]
    assert slices["challenger_count_mae"].to_list() == [9.0, 3.0]
    assert slices["champion_count_mae"].to_list() == [18.0, 6.0]


def test_the_report_has_its_figures_tables_and_pictures(tmp_path: Path) -> None:
    """report.md and report.html name the verdict and each metric; both PNGs are drawn."""
    comparison, window = report_inputs()
    scored = _scored({("sp500", "gap", "1d"): (MIN_SLICE_ROWS, 3.0)})
    md = write_report(tmp_path, "v2", comparison, window, scored).read_text()
    assert "# Retrain: v2 against v1" in md
    assert "**Verdict: promote.**" in md
    assert "| result_count MAE | 9 | 7 | +2 [+1, +3] | 20 | better |" in md
    assert "| sp500 | gap | 1d | 5 |" in md
    page = (tmp_path / "report.html").read_text()
    assert "Verdict: promote." in page
    assert (tmp_path / "differences.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "slices.png").read_bytes()[:4] == b"\x89PNG"
