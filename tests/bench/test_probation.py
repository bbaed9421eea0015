"""`python -m bench.probation`: the rates table on a couple of histories, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.probation import main

REPO = Path(__file__).resolve().parents[2]


def test_the_bad_version_is_caught_on_every_history(capsys: pytest.CaptureFixture[str]) -> None:
    """Two short histories: the table has the plan's rows, absolute alone and with the
    comparison to the parent, the bad version at 100% by both."""
    argv = ["--histories", "2", "--plan", "200:300", "--artifacts", str(REPO / "artifacts")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "200" in line and "300" in line]
    cells = [[cell.strip() for cell in row.strip("│ ").split("│")] for row in rows]
    assert [c[:3] for c in cells] == [["200", "300", "absolute"], ["200", "300", "+ parent"]]
    assert [c[4] for c in cells] == ["100.0%", "100.0%"]  # the bad version


def test_a_missing_model_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No artifacts/current: one stderr line, exit 1."""
    assert main(["--artifacts", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error:")


def test_a_malformed_plan_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A plan that is not MIN:OUTCOMES is refused by the parser, naming what it expects."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--plan", "400-1000"])
    assert exit_info.value.code == 2
    assert "expected MIN:OUTCOMES" in capsys.readouterr().err
