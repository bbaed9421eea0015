"""Fitting: sane metrics on a small generated history, calibrated intervals, the CLI."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest

from server.domain.artifact import TrainingData
from train.censored import fit_censored_log, timeout_mask
from train.conformal import Interval, calibrate_interval, conformal_widening, group_edges
from train.data import dataset_from_records
from train.evaluate import learning_curve, learning_curve_sizes
from train.fit import FitReport, main
from train.generate import generate_records, write_history
from train.models import predict_outputs
from train.targets import TARGETS, Target, check_targets
from train.training import (
    QUICK_MODELS,
    FitSettings,
    TrainError,
    TrainResult,
    split_dataset,
    train_models,
)


@pytest.fixture(scope="module")
def result() -> TrainResult:
    records = generate_records(1500, seed=21)
    data = TrainingData(path="<test>", sha256="0" * 64, rows=len(records))
    return train_models(dataset_from_records(records), data, FitSettings.quick(seed=21))


def test_quick_training_gives_sane_metrics(result: TrainResult) -> None:
    """Even tiny models beat nothing: finite errors near the oracle, AUC well above chance."""
    count, duration, empty = (result.metrics[k] for k in ("result_count", "duration_s", "empty"))
    assert 0 < count["mae"] < 3 * count["oracle_mae"]
    assert 0 < duration["mae"] < 2 * duration["oracle_mae"]
    assert 0.75 < count["coverage_90"] <= 1.0
    assert 0.75 < duration["coverage_90"] <= 1.0
    assert empty["roc_auc"] > 0.75
    assert 0 <= empty["brier"] < empty["base_rate"]
    assert sum(b.count for b in result.calibration) == len(result.splits.test)


def test_outputs_keep_their_bounds_and_order(result: TrainResult) -> None:
    """Counts in [0, universe size], intervals around their point, durations > 0, p in [0, 1]."""
    x = result.splits.test.features
    out = predict_outputs(result.models, x)
    assert np.all(out["result_count_lo"] <= out["result_count"])
    assert np.all(out["result_count"] <= out["result_count_hi"])
    assert np.all(out["result_count_hi"] <= x[:, 0])
    assert np.all(out["result_count_lo"] >= 0)
    assert np.all(out["duration_s_lo"] > 0)
    assert np.all(out["duration_s_lo"] <= out["duration_s"])
    assert np.all(out["duration_s"] <= out["duration_s_hi"])
    assert np.all(out["duration_s_hi"] <= result.models.duration_cap_s)
    assert np.all((out["p_empty"] >= 0) & (out["p_empty"] <= 1))


def test_split_is_seeded_and_disjoint(result: TrainResult) -> None:
    """Same seed, same split; train, calibration and test share no row."""
    data = dataset_from_records(generate_records(300, seed=1))
    a, b = split_dataset(data, FitSettings(seed=4)), split_dataset(data, FitSettings(seed=4))
    assert np.array_equal(a.test.features, b.test.features)
    assert len(a.train) + len(a.calibration) + len(a.test) == 300
    rows = {r.tobytes() for part in (a.train, a.calibration, a.test) for r in part.features}
    assert len(rows) == 300


def test_splits_share_no_user() -> None:
    """Train, calibration and test users are disjoint, and each split holds about its share."""
    data = dataset_from_records(generate_records(3000, seed=5))
    splits = split_dataset(data, FitSettings(seed=2))
    users = [set(part.users.tolist()) for part in (splits.train, splits.calibration, splits.test)]
    assert all(users)
    assert not users[0] & users[1]
    assert not users[0] & users[2]
    assert not users[1] & users[2]
    assert sum(len(u) for u in users) == np.unique(data.users).size
    assert 0.15 < len(splits.test) / len(data) < 0.25
    assert 0.15 < len(splits.calibration) / len(data) < 0.25


def test_another_seed_puts_other_users_in_the_test_split() -> None:
    """The user split is seeded: a different seed holds out different users."""
    data = dataset_from_records(generate_records(3000, seed=5))
    a = set(split_dataset(data, FitSettings(seed=1)).test.users.tolist())
    b = set(split_dataset(data, FitSettings(seed=2)).test.users.tolist())
    assert a != b


def test_too_few_users_is_a_train_error() -> None:
    """Two users cannot fill three splits: refused with the count and the minimum."""
    data = dataset_from_records(generate_records(3000, seed=1))
    two = data.take(np.flatnonzero(np.isin(data.users, np.unique(data.users)[:2])))
    assert len(two) >= 60
    with pytest.raises(
        TrainError, match="2 users is too few to split by user: expected at least 3"
    ):
        split_dataset(two, FitSettings())


def test_too_few_records_is_a_train_error() -> None:
    """A handful of records is refused with the count and the minimum."""
    data = dataset_from_records(generate_records(20, seed=1))
    with pytest.raises(TrainError, match="20 records is too few to train: expected at least 60"):
        split_dataset(data, FitSettings())


def test_conformal_widening_gives_ninety_percent_on_fresh_data() -> None:
    """Split conformal on exchangeable data covers ~90% of new rows, whatever the raw width."""
    rng = np.random.default_rng(0)
    cal, new = rng.normal(size=2000), rng.normal(size=50_000)
    zeros = np.zeros(2000)
    t = conformal_widening(zeros - 0.2, zeros + 0.2, cal, cal, alpha=0.1)
    covered = (new >= -0.2 - max(t, 0)) & (new <= 0.2 + t)
    assert covered.mean() == pytest.approx(0.9, abs=0.015)


def test_a_negative_widening_never_tightens_the_lower_end() -> None:
    """When raw intervals are too wide the upper end comes in; the lower end stays put."""
    y = np.random.default_rng(1).uniform(0, 1, 1000)
    interval = calibrate_interval(np.full(1000, -5.0), np.full(1000, 5.0), y, y, 0.1, 1)
    assert interval.widenings[0] < 0
    lo, hi = interval.apply(np.array([-5.0]), np.array([5.0]))
    assert lo[0] == -5.0
    assert hi[0] < 5.0


def test_mondrian_groups_cover_small_and_large_scans_alike() -> None:
    """Two sizes of scan with different noise: each group is covered ~90%, not just the mean."""
    rng = np.random.default_rng(2)
    n = 4000
    big = np.arange(n) % 2 == 0  # half the scans are big: the median edge separates them
    hi = np.where(big, 5.0, 1.0) + rng.normal(0, 0.01, n)  # raw upper quantile tells them apart
    y = np.where(big, rng.normal(0, 4.0, n), rng.normal(0, 0.5, n))
    interval = calibrate_interval(-hi, hi, y, y, alpha=0.1, groups=2)
    assert len(interval.edges) == 1
    lo_c, hi_c = interval.apply(-hi, hi)
    covered = (y >= lo_c) & (y <= hi_c)
    assert covered[big].mean() == pytest.approx(0.9, abs=0.03)
    assert covered[~big].mean() == pytest.approx(0.9, abs=0.03)


def test_groups_can_split_on_the_point_prediction() -> None:
    """Keyed on the point, the largest predictions get their own widening and cover ~90%."""
    rng = np.random.default_rng(8)
    point = rng.uniform(0, 3, 6000)
    y = point + rng.normal(0, 0.1 + 0.4 * (point > 2), 6000)  # big scans are noisier
    flat = np.full(6000, 0.2)  # an upper quantile that knows nothing
    interval = calibrate_interval(point - flat, point + flat, y, y, 0.1, 3, raw_point=point)
    assert interval.key == "point"
    assert interval.widenings[2] > interval.widenings[0]
    with pytest.raises(ValueError, match="pass raw_point"):
        interval.apply(point - flat, point + flat)
    fresh = rng.uniform(0, 3, 6000)
    y_new = fresh + rng.normal(0, 0.1 + 0.4 * (fresh > 2), 6000)
    lo, hi = interval.apply(fresh - 0.2, fresh + 0.2, fresh)
    top = fresh > 2
    assert 0.87 < np.mean((lo <= y_new) & (y_new <= hi)) < 0.93
    assert 0.86 < np.mean(((lo <= y_new) & (y_new <= hi))[top]) < 0.94


def test_widening_ramps_across_an_edge_instead_of_jumping() -> None:
    """Rows a hair apart get nearly the same widening, so float32 rounding cannot flip a group."""
    interval = Interval(edges=[1.0], widenings=[-0.5, 0.5])
    at = interval.widening_for(np.array([1.0 - 1e-6, 1.0, 1.0 + 1e-6, 0.0, 2.0]))
    assert abs(at[0] - at[2]) < 1e-3
    assert at[1] == pytest.approx(0.0)
    assert list(at[3:]) == [-0.5, 0.5]


def test_group_edges_fall_between_values() -> None:
    """No calibration value sits on an edge, so float32 and float64 agree on every group."""
    values = np.repeat(np.arange(30, dtype=np.float64), 10)
    edges = group_edges(values, 3)
    assert len(edges) == 2
    assert not set(edges) & set(values)


def test_censored_fit_sees_past_the_timeout() -> None:
    """With 20% of durations capped, the EM fit's median above the cap is closer to the truth."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (3000, 1)).astype(np.float32)
    true_log = 1.0 + 3.0 * x[:, 0]
    cap = float(np.exp(np.quantile(true_log, 0.8)))
    y = np.minimum(np.exp(true_log + rng.normal(0, 0.2, 3000)), cap)
    assert timeout_mask(y).mean() > 0.1
    naive, _ = fit_censored_log(LinearRegression, x, y, rounds=0)
    em, got_cap = fit_censored_log(LinearRegression, x, y, rounds=3)
    assert got_cap == pytest.approx(cap)
    assert abs(em.coef_[0] - 3.0) < abs(naive.coef_[0] - 3.0)
    assert em.coef_[0] == pytest.approx(3.0, abs=0.2)


def test_no_pile_at_the_maximum_means_no_censoring() -> None:
    """Continuous durations without a timeout are not treated as censored."""
    y = np.random.default_rng(4).lognormal(2, 0.3, 1000)
    assert not timeout_mask(y).any()


def test_targets_pass_fail_and_missing() -> None:
    """A bar passes inside its bounds, fails outside, and fails when the metric is absent."""
    lt = Target(label="x", group="g", key="k", high=10.0, strict=True)
    band = Target(label="y", group="g", key="b", low=0.88, high=0.92)
    metrics = {"g": {"k": 10.0, "b": 0.9}}
    checks = check_targets(metrics, (lt, band, Target(label="z", group="g", key="gone", high=1)))
    assert [c.passed for c in checks] == [False, True, False]
    assert checks[2].measured is None
    groups = {"result_count", "duration_s", "empty"}
    assert {t.group for t in TARGETS} == {
        *groups,
        *(f"fresh_{g}" for g in groups),
        "training",
    }


def test_learning_curve_is_by_users_and_ends_at_all_of_them(result: TrainResult) -> None:
    """Sizes double from 5 users up to every training user; each point counts its users."""
    assert learning_curve_sizes(50) == [5, 10, 20, 40, 50]
    assert learning_curve_sizes(4) == [4]
    pool = result.splits.train.concat(result.splits.calibration)
    n_users = np.unique(pool.users).size
    curve = learning_curve(pool, result.splits.test, QUICK_MODELS, [5, n_users], seed=0)
    assert [p.users for p in curve] == [5, n_users]
    assert curve[0].rows < curve[1].rows == len(pool)


def test_fit_cli_writes_metrics_plots_and_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m train.fit --quick`: metrics.json decodes, plots and the bundle exist."""
    data, _ = write_history(generate_records(800, seed=9), tmp_path / "h.jsonl")
    out = tmp_path / "out"
    assert main(["--data", str(data), "--out", str(out), "--quick"]) == 0
    report = msgspec.json.decode((out / "metrics.json").read_bytes(), type=FitReport)
    assert report.training_data.rows == 800
    assert (
        report.training_data.sha256 == __import__("hashlib").sha256(data.read_bytes()).hexdigest()
    )
    assert {c.target.label for c in report.targets} == {t.label for t in TARGETS}
    assert sorted(p.name for p in out.glob("*.png")) == [
        "calibration.png",
        "predicted_vs_actual.png",
        "residuals.png",
    ]
    assert (out / "models.joblib").stat().st_size > 0
    assert "Targets" in capsys.readouterr().out


def test_fit_cli_missing_data_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing history: exit 2, one line naming the path, nothing written."""
    path = tmp_path / "none.jsonl"
    assert main(["--data", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: no such file")
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_fit_cli_bad_line_fails_or_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A schema violation stops the default run by line and field; --on-bad-line skip drops it."""
    data, _ = write_history(generate_records(400, seed=2), tmp_path / "h.jsonl")
    lines = data.read_text().splitlines()
    lines[6] = lines[6].replace('"rsi_max":', '"rsi_max":1000,"x":')
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert main(["--data", str(data), "--out", str(out), "--quick"]) == 2
    err = capsys.readouterr().err
    assert f"{data}:7: field " in err
    assert err.count("\n") == 1
    assert main(["--data", str(data), "--out", str(out), "--quick", "--on-bad-line", "skip"]) == 0
    report = msgspec.json.decode((out / "metrics.json").read_bytes(), type=FitReport)
    assert report.training_data.rejected_rows == 1
    assert [b.line for b in report.bad_lines] == [7]
    assert "skipped" in capsys.readouterr().out
