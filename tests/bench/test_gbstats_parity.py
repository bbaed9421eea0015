"""The parity command: every figure within 1e-6 of gbstats, and the exit code says so."""

from __future__ import annotations

import pytest

from bench.gbstats_parity import TOLERANCE, ParityRow, main, measure_parity
from tests.server.analysis.gbstats_reference import gbstats_module


def test_every_kind_and_figure_is_within_tolerance() -> None:
    """Ten data sets a kind: 7 figures x 3 kinds + the SRM p, all within 1e-6."""
    gbstats_module("frequentist.tests")
    rows = measure_parity(10, seed=3)
    assert len(rows) == 7 * 3 + 1
    assert {r.kind for r in rows} == {"mean", "proportion", "ratio", "srm"}
    assert max(r.max_rel_diff for r in rows) <= TOLERANCE


@pytest.mark.parametrize(("worst", "code"), [(1e-7, 0), (2e-6, 1)])
def test_the_exit_code_follows_the_worst_figure(worst: float, code: int) -> None:
    """Exit 0 when every figure is within 1e-6, 1 as soon as one is not."""
    rows = [ParityRow(kind="ratio", figure="p", max_rel_diff=worst)]
    assert main(["--data-sets", "1"], measure=lambda _n, _seed: rows) == code
