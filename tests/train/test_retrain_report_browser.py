"""The retrain report's HTML page in a real browser (Playwright driving Debian's
chromium): hostile text from the store (a strategy, a universe) and the version names
is shown as text and runs nothing."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from server.domain.artifact import DataWindow, PairedDifference, RetrainComparison
from tests.security.hostile import HOSTILE, render_in_chromium
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
    diff = PairedDifference(
        metric=f"m {HOSTILE}",
        champion=9.0,
        challenger=7.0,
        difference=2.0,
        lower=1.0,
        upper=3.0,
        users=20,
        rows=100,
        verdict="better",
    )
    comparison = RetrainComparison(
        champion=f"champion {HOSTILE}",
        rule=f"rule {HOSTILE}",
        promote=True,
        reasons=[f"reason {HOSTILE}"],
        differences=[diff],
        checks={f"check {HOSTILE}": 20.0},
    )
    window = DataWindow(
        source=f"sqlite:///{HOSTILE}.db",
        rows=100,
        users=20,
        first_at="2026-01-01T00:00:00Z",
        last_at="2026-01-02T00:00:00Z",
        sha256="0" * 64,
        base_rows=500,
        recent_weight=4.0,
        holdout_rows=40,
        holdout_users=8,
    )
    write_report(tmp_path, f"challenger {HOSTILE}", comparison, window, scored)
    page = render_in_chromium(path=tmp_path / "report.html")
    for shown in ("strategy", "universe", "champion", "challenger", "rule", "reason", "m"):
        prefix = {"strategy": "s", "universe": "u"}.get(shown, shown)
        assert f"{prefix} {HOSTILE}" in page.text, shown
    assert page.pwned is None
    assert page.hostile_elements == 0
    assert page.errors == []
