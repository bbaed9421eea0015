"""The model lifecycle end to end: shift -> the app's alerts -> retrain -> promote -> recover.

Two real servers (Granian, 2 workers each) in turn, a quick champion trained here by the
real pipeline, simulated users over HTTP in the shifted world, `just retrain`'s code on
the first server's store. `just loop` runs the same at full size.
"""

from __future__ import annotations

import io

import msgspec
import pytest
from rich.console import Console

from bench.loop import (
    LoopConfig,
    LoopResult,
    expected_signals,
    passed,
    print_result,
    run_loop,
    target_of,
)
from bench.simulation.shifts import SHIFTS
from export.pipeline import build_version
from train.generate import generate_records

SHIFT = "slow_provider"


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoopResult, str]:
    root = tmp_path_factory.mktemp("loop")
    base = generate_records(3000, seed=11)
    history = root / "scan_history.jsonl"
    history.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in base))
    build_version(base, root / "artifacts", seed=0, quick=True)
    config = LoopConfig(
        shift=SHIFT, users=500, days=3, pre_days=2, threads=8, quick=True, recent_weight=1000.0
    )
    console = Console(file=io.StringIO(), width=150)
    result = run_loop(config, root / "artifacts", history, root / "work", console)
    print_result(result, console)
    assert isinstance(console.file, io.StringIO)
    return result, console.file.getvalue()


@pytest.mark.slow
def test_the_alerts_fire_in_the_shifted_world(loop: tuple[LoopResult, str]) -> None:
    """The app's own alert evaluation (GET /v1/dashboard/live) raises the champion's
    duration accuracy and coverage alerts before anything is retrained."""
    result, _ = loop
    champion = result.before.version
    assert f"ScanoptAccuracyDegraded{{target=duration_s,version={champion}}}" in result.fired
    assert f"ScanoptCoverageOutOfBand{{target=duration_s,version={champion}}}" in result.fired
    assert result.before.labelled >= 400  # the alerts' MIN_LABELLED
    assert result.before.coverage["duration_s"] < 0.85


@pytest.mark.slow
def test_the_challenger_is_promoted_and_the_error_falls(loop: tuple[LoopResult, str]) -> None:
    """Retrained on the new outcomes, the challenger wins by the printed rule and serves;
    on the traffic after (other users, other days), its duration MAE is well below the
    champion's on the same rows (measured: 0.35x)."""
    result, printed = loop
    assert result.retrain.promoted, result.retrain.comparison.reasons
    assert result.after.version == result.retrain.challenger != result.before.version
    target = target_of(result.shift)
    assert target == "duration_s"
    assert result.paired_served[target] < 0.6 * result.paired_champion[target]
    assert result.paired_rows > 200
    assert passed(result)
    assert "MAE champion" in printed


def test_each_shift_names_the_alerts_it_should_raise() -> None:
    """A shift that degrades a target expects the accuracy alerts; one that moves
    columns expects drift on each of them."""
    assert expected_signals(SHIFTS["slow_provider"]) == {"accuracy"}
    assert expected_signals(SHIFTS["volatility"]) == {"drift volatility_index"}
    assert expected_signals(SHIFTS["us_all"]) == {
        "drift universe_is_us_all",
        "drift universe_size",
    }
    assert target_of("slow_provider") == "duration_s"
    assert target_of("volatility") == "result_count"
