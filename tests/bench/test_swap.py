"""bench.swap: promote and roll back under open-loop load with zero failed requests."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from bench.openloop import LoadRunError, OpenLoopRecord
from bench.swap import ScheduledMove, analyse, run_swap

REPO = Path(__file__).resolve().parents[2]


def _record(versions: list[str | None], rate: float = 100.0) -> OpenLoopRecord:
    """A run where request i was sent on time, took 1 ms and answered with versions[i]."""
    rec = OpenLoopRecord(len(versions), rate, keep_bodies=True)
    for i, version in enumerate(versions):
        rec.sent[i] = i / rate
        rec.done[i] = i / rate + 0.001
        rec.status[i] = 200 if version != "!" else 503
        rec.bodies[i] = msgspec.json.encode({"model_version": version})
    return rec


def _move(action: str, started: float, switched: float, old: str, new: str) -> ScheduledMove:
    return ScheduledMove(
        action=action,
        at_s=started,
        started=started,
        switched=switched,
        from_version=old,
        to_version=new,
    )


def test_follow_time_ends_at_the_last_old_answer() -> None:
    """Old answers sent 0.05 s after the switch mean the last worker followed at 0.05 s."""
    versions = ["a"] * 10 + ["a", "b", "a", "b", "a", "b"] + ["b"] * 4
    result = analyse(_record(versions), [_move("promote", 0.08, 0.095, "a", "b")], 2, 0.5, 0.2)
    (move,) = result.moves
    assert move.follow_s == pytest.approx(0.14 - 0.095)
    assert move.answers_old_after_switch == 3
    assert result.errors == 0
    assert result.passed


def test_a_rollback_is_not_charged_to_the_promotion() -> None:
    """Old-version answers after the next move started belong to that move."""
    versions = ["a"] * 5 + ["b"] * 5 + ["a"] * 5
    moves = [
        _move("promote", 0.04, 0.045, "a", "b"),
        _move("rollback", 0.095, 0.099, "b", "a"),
    ]
    result = analyse(_record(versions), moves, 2, 0.5, 0.15)
    assert [m.follow_s for m in result.moves] == [0.0, 0.0]


def test_errors_and_a_worker_left_behind_fail_the_run() -> None:
    """A 503 counts as an error; a version never served means follow_s None."""
    versions = ["a"] * 5 + ["!"] + ["a"] * 4
    result = analyse(_record(versions), [_move("promote", 0.02, 0.03, "a", "b")], 2, 0.5, 0.1)
    assert result.errors == 1
    assert result.moves[0].follow_s is None
    assert not result.passed


def test_a_move_that_failed_is_reported() -> None:
    """A refused promotion during the run is a LoadRunError naming it, not a figure."""
    move = ScheduledMove(action="promote", at_s=0.0, error="LifecycleError: refused")
    with pytest.raises(LoadRunError, match="promote failed during the run"):
        analyse(_record(["a"] * 3), [move], 2, 0.5, 0.03)


def test_promote_and_rollback_under_load_fail_no_request(tmp_path: Path) -> None:
    """500 req/s against 2 Granian workers through a promotion and a rollback: 0 errors,
    every worker follows each move, and the figures are printed for the log."""
    result = run_swap(
        tmp_path, REPO / "artifacts", rate=500.0, duration_s=6.0, workers=2, poll_s=0.5
    )
    for m in result.moves:
        print(
            f"{m.action}: switched in {m.switch_s:.3f} s, followed in {m.follow_s} s, "
            f"worst {m.worst_ms:.1f} ms"
        )
    assert result.requests == 3000
    assert result.errors == 0, result.error_samples
    assert [m.action for m in result.moves] == ["promote", "rollback"]
    assert result.moves[0].to_version == result.moves[1].from_version
    assert result.moves[1].to_version == result.moves[0].from_version
    assert all(m.follow_s is not None for m in result.moves)
