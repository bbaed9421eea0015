"""The retrain report's HTML page in a real browser (Playwright driving Debian's
chromium): hostile text from the store (a strategy, a universe) and the version names
is shown as text and runs nothing."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.security.hostile import HOSTILE, render_in_chromium
from tests.train.retrain_inputs import report_inputs
from train.retrain_report import MIN_SLICE_ROWS, write_report

# The hostile labels are too long for the slices plot to lay out tightly; harmless here.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Tight layout not applied")]


def test_hostile_names_in_the_retrain_report_are_shown_as_text(tmp_path: Path) -> None:
    """A strategy and universe read back from the store, the version names, the rule, a
    reason and a metric carrying markup: all shown as the characters they are, no script
    runs, no element is made from them, the console stays clean."""
    scored = pl.DataFrame(
        [
            {
                "user": f"u{i}",
                "universe": f"u {HOSTILE}",
                "strategy": f"s {HOSTILE}",
                "timeframe": "1d",
                "result_count": 10.0,
                "duration_s": 2.0,
                "champion_result_count": 14.0,
                "challenger_result_count": 12.0,
                "challenger_duration_s": 2.5,
            }
            for i in range(MIN_SLICE_ROWS)
        ]
    )
    comparison, window = report_inputs(f" {HOSTILE}")
    write_report(tmp_path, f"challenger {HOSTILE}", comparison, window, scored)
    page = render_in_chromium(path=tmp_path / "report.html")
    shown_names = (
        "s",
        "u",
        "v1",
        "challenger",
        "the rule",
        "result_count MAE",
        "better",
        "one_row_us",
    )
    for shown in shown_names:
        assert f"{shown} {HOSTILE}" in page.text, shown
    assert page.pwned is None
    assert page.hostile_elements == 0
    assert page.errors == []
