"""Grouped cross-validation: folds hold out whole users, and every lever is scored on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from train.crossval import LEVERS, cross_validate, grouped_folds, main
from train.data import dataset_from_records
from train.generate import generate_records, write_history
from train.training import QUICK_MODELS


def test_folds_partition_the_users() -> None:
    """Every user is in exactly one test fold, with all of their scans."""
    data = dataset_from_records(generate_records(1200, seed=3))
    folds = grouped_folds(data, 3, seed=0)
    assert np.array_equal(np.sum(folds, axis=0), np.ones(len(data)))
    users = [set(data.users[mask].tolist()) for mask in folds]
    assert not users[0] & users[1]
    assert not users[1] & users[2]
    assert not users[0] & users[2]


def test_cross_validation_scores_each_fold_on_its_own_users() -> None:
    """Quick models on three folds: test rows add up to the data, metrics are finite."""
    data = dataset_from_records(generate_records(1500, seed=3))
    result = cross_validate(
        data, "quick", QUICK_MODELS, folds=3, seed=0, latency=False, data_name="<test>"
    )
    assert sum(f.test_rows for f in result.folds) == len(data)
    assert result.trees == 40 + 40 + 40 + 4 * 30
    assert 1.0 < result.mean["result_count"]["mae_over_oracle"] < 3.0
    assert "coverage_90_tercile_3" in result.mean["duration_s"]


def test_an_unknown_lever_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lever not in LEVERS: exit 2 with argparse's one-line error listing the choices."""
    data, _ = write_history(generate_records(100, seed=1), tmp_path / "h.jsonl")
    with pytest.raises(SystemExit) as exc:
        main(["--data", str(data), "--lever", "nope"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err
    assert "default" in err
    assert "default" in LEVERS
