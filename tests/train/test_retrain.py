"""`just retrain`: store outcomes -> challenger -> paired comparison -> promote or keep."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from tests.train.conftest import OUTCOMES, World, recent, write_outcomes
from train.generate import generate_records
from train.models import Boosting, ModelSettings
from train.retrain import RetrainError, main, recent_outcomes, retrain
from train.training import FitSettings


def _current(world: World) -> str:
    return (world.artifacts / "current").read_text().strip()


def test_a_better_challenger_is_promoted(world: World) -> None:
    """After the market shifts (3x the results), the challenger trained on the new
    outcomes wins on the holdout users, is promoted, and its manifest says why."""
    write_outcomes(world.store, recent(generate_records(OUTCOMES, seed=5), 3.0))
    done = retrain(world.store, world.history, world.artifacts, world.out, quick=True)
    assert done.comparison.promote, done.comparison.reasons
    assert done.promoted
    assert _current(world) == done.challenger
    count = done.comparison.differences[0]
    assert count.metric == "result_count MAE"
    assert count.verdict == "better"
    assert count.lower > 0
    manifest = json.loads((done.folder / "manifest.json").read_text())
    assert manifest["parent_version"] == world.champion
    assert manifest["comparison"]["champion"] == world.champion
    window = manifest["data_window"]
    used = window["rows"] + window["holdout_rows"]
    unused = window["unused_holdout_users_before"] + window["unused_train_users_after"]
    assert used + unused == OUTCOMES
    assert window["holdout_from"] == "2025-06-04T00:00:00Z"  # the third of three days
    assert window["holdout_days"] == 1
    assert len(manifest["data_window"]["sha256"]) == 64
    assert (done.report.parent / "report.html").is_file()
    assert (done.report.parent / "slices.png").stat().st_size > 0
    assert "Worst-error slices" in done.report.read_text()


def test_a_worse_challenger_is_refused(world: World) -> None:
    """A challenger with 2 boosting rounds loses on the unshifted market: the rule says
    keep the champion, it is written but current still names the champion."""
    write_outcomes(world.store, recent(generate_records(OUTCOMES, seed=5), 1.0))
    weak = Boosting(max_iter=2, learning_rate=0.05)
    settings = msgspec.structs.replace(
        FitSettings.quick(0), models=ModelSettings(count=weak, duration=weak, empty=weak)
    )
    done = retrain(
        world.store, world.history, world.artifacts, world.out, quick=True, settings=settings
    )
    assert not done.comparison.promote
    assert not done.promoted
    assert any(d.verdict == "worse" for d in done.comparison.differences)
    assert done.comparison.reasons[-1].startswith("keep the champion: worse on")
    assert _current(world) == world.champion
    assert done.folder.is_dir()


def test_no_outcomes_is_one_line(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty store: exit 1 and a line saying how many outcomes are needed."""
    write_outcomes(world.store, [])
    args = ["--store", world.store, "--history", str(world.history)]
    assert main([*args, "--artifacts", str(world.artifacts), "--quick"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no labelled outcomes" in err
    assert "at least 200" in err
    assert _current(world) == world.champion


def test_too_few_outcomes_says_how_many_more(world: World) -> None:
    """150 outcomes against a minimum of 200: the error names both and the gap."""
    write_outcomes(world.store, recent(generate_records(150, seed=5), 3.0))
    with pytest.raises(
        RetrainError, match=r"150 labelled outcomes: expected at least 200 \(50 more\)"
    ):
        retrain(world.store, world.history, world.artifacts, world.out, quick=True)


def test_an_unreadable_store_is_one_line(tmp_path: Path, world: World) -> None:
    """A store file that is not a database: one line naming it, exit 1."""
    bad = tmp_path / "not-a.db"
    bad.write_text("not sqlite")
    code = main(
        [
            "--store",
            f"sqlite:///{bad}",
            "--history",
            str(world.history),
            "--artifacts",
            str(world.artifacts),
            "--quick",
        ]
    )
    assert code == 1
    assert _current(world) == world.champion


def test_the_holdout_is_later_than_every_training_outcome_and_of_unseen_users(
    world: World,
) -> None:
    """The holdout is from users the challenger never saw AND from the latest date, later
    than every outcome it trains on (a split by user alone let it learn the shift for the
    holdout's own days); the rows left out are counted, and every outcome is one of the
    four parts."""
    write_outcomes(world.store, recent(generate_records(OUTCOMES, seed=5), 3.0))
    split = recent_outcomes(world.store, 200, 0.3, 0, holdout_days=1)
    assert split.holdout
    assert split.train
    assert min(r.timestamp for r in split.holdout) >= split.cutoff
    assert max(r.timestamp for r in split.train) < split.cutoff
    assert not set(split.holdout_users) & set(split.train_users)
    assert split.unused_holdout_users_before > 0
    assert split.unused_train_users_after > 0
    parts = len(split.train) + len(split.holdout)
    parts += split.unused_holdout_users_before + split.unused_train_users_after
    assert parts == OUTCOMES
    two = recent_outcomes(world.store, 200, 0.3, 0, holdout_days=2)
    assert two.cutoff < split.cutoff
    assert len(two.holdout) > len(split.holdout)


def test_outcomes_of_one_date_are_refused(world: World) -> None:
    """Outcomes all on one date leave nothing earlier than a one-day holdout: the error
    names the dates and what is expected."""
    one_day = [
        msgspec.structs.replace(r, timestamp=r.timestamp.replace(day=2))
        for r in recent(generate_records(300, seed=5), 3.0)
    ]
    write_outcomes(world.store, one_day)
    with pytest.raises(RetrainError, match=r"outcomes on 1 date\(s\): expected more than"):
        retrain(world.store, world.history, world.artifacts, world.out, quick=True)
    assert _current(world) == world.champion
