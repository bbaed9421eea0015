"""The clock-rounding measurement: per output, how the served (minute) clock moves answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.clock_rounding import measure
from export.pipeline import build_version
from train.generate import generate_records


@pytest.mark.slow
def test_shifts_are_measured_per_output(tmp_path: Path) -> None:
    """Three outputs, shares in [0, 1], and a tiny change: the encoding is the trained one
    but for under a minute of the time of day."""
    build_version(generate_records(800, seed=0), tmp_path, seed=0, quick=True)
    version, shifts = measure(tmp_path, 300, seed=1)
    assert version
    assert [s.output for s in shifts] == ["result_count", "duration_s", "p_empty"]
    for s in shifts:
        assert 0.0 <= s.share_changed <= 1.0
        assert s.mean_abs >= 0.0
    assert all(s.share_changed < 0.5 for s in shifts)
