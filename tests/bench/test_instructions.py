"""bench.instructions: callgrind's count of a run, and that the count is repeatable."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench.instructions import callgrind_total, count

ARTIFACTS = Path("artifacts")


def test_the_total_is_read_from_the_dumps_summary_line() -> None:
    assert callgrind_total("version: 1\ncmd: python\nsummary: 264866070\n\nfn=x\n") == 264866070
    assert callgrind_total("events: Ir\ntotals: 42\n") == 42
    with pytest.raises(ValueError, match="no summary"):
        callgrind_total("events: Ir\n")


def _need_valgrind() -> None:
    if shutil.which("valgrind") is not None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but valgrind is missing: .ci/run installs it with apt-get")
    pytest.skip("valgrind is not installed here (apt-get install valgrind)")


def test_counts_repeat_and_scanopt_costs_more_than_the_constant_endpoint(tmp_path: Path) -> None:
    """Two counts of the constant endpoint over different numbers of requests agree per
    request within 3% (what makes the figure usable on a noisy machine), and scanopt's
    request (decode, gate, model, log, metrics) costs several times more."""
    _need_valgrind()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    short = count("ceiling", 40, ARTIFACTS, tmp_path / "a", warmup=200)
    long = count("ceiling", 120, ARTIFACTS, tmp_path / "b", warmup=200)
    assert long.per_request == pytest.approx(short.per_request, rel=0.03)
    assert 50_000 < long.per_request < 2_000_000
    scanopt = count("scanopt", 40, ARTIFACTS, tmp_path / "c", warmup=200)
    assert scanopt.per_request > 2 * long.per_request
