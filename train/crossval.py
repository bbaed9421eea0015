"""`just crossval`: model settings compared by cross-validation grouped by user.

    python -m train.crossval [--data data/scan_history.jsonl] [--folds 3] [--seed 0]
                             [--lever NAME ...] [--latency] [--out var/crossval]

Each fold holds out a third (for 3 folds) of the users as its test users; the other users
are split by user into train and calibration exactly as `just train` splits them, so every
figure is on users the models never saw, and the test split of `just train` is never used
to choose anything. A lever is a named `ModelSettings` in `LEVERS`; the table shows, per
lever, the mean over folds of every bar's metric, the tree count and (with --latency) the
onnxruntime cost of a one-row run on fold 0's test rows. Results also go to
<out>/<lever>.json.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NoReturn

import msgspec
import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from train.data import Dataset, HistoryError, dataset_from_records, load_history
from train.evaluate import population_metrics
from train.models import Boosting, ModelSettings, fit_models, predict_outputs
from train.training import FitSettings, TrainError, split_dataset

__all__ = [
    "LEVERS",
    "PREVIOUS",
    "FoldResult",
    "LeverResult",
    "cross_validate",
    "grouped_folds",
    "main",
]

# The settings of the default model before the split by user, and each lever as one change
# from them; "default" is ModelSettings() as it is now.
PREVIOUS: Final = ModelSettings(
    empty=Boosting(max_iter=100, learning_rate=0.3), interval_key="upper"
)


def _count(**changes: object) -> ModelSettings:
    return msgspec.structs.replace(
        PREVIOUS, count=msgspec.structs.replace(PREVIOUS.count, **changes)
    )


LEVERS: Final[dict[str, ModelSettings]] = {
    "default": ModelSettings(),
    "previous": PREVIOUS,
    "count-400": _count(max_iter=400),
    "count-500": _count(max_iter=500),
    "count-d4-300": _count(max_depth=4),
    "count-leaf100": _count(min_samples_leaf=100, l2_regularization=30.0),
    "count-lr0.1-600": _count(max_iter=600, learning_rate=0.1),
    "quantile-100": msgspec.structs.replace(
        PREVIOUS, quantile=Boosting(max_iter=100, learning_rate=0.15)
    ),
    "quantile-leaf50": msgspec.structs.replace(
        PREVIOUS, quantile=Boosting(max_iter=50, learning_rate=0.3, min_samples_leaf=50)
    ),
    "groups-4": msgspec.structs.replace(PREVIOUS, interval_groups=4),
    "groups-point": msgspec.structs.replace(PREVIOUS, interval_key="point"),
    "empty-reg": msgspec.structs.replace(
        PREVIOUS,
        empty=Boosting(
            max_iter=100, learning_rate=0.3, min_samples_leaf=100, l2_regularization=10.0
        ),
    ),
    "empty-lr0.1-200": msgspec.structs.replace(
        PREVIOUS, empty=Boosting(max_iter=200, learning_rate=0.1)
    ),
    "empty-lr0.5": msgspec.structs.replace(
        PREVIOUS, empty=Boosting(max_iter=100, learning_rate=0.5)
    ),
    "empty-d4": msgspec.structs.replace(
        PREVIOUS, empty=Boosting(max_iter=100, learning_rate=0.3, max_depth=4)
    ),
    "empty-200": msgspec.structs.replace(PREVIOUS, empty=Boosting(max_iter=200, learning_rate=0.3)),
    # From the current default:
    "default-empty-d5": msgspec.structs.replace(
        ModelSettings(), empty=Boosting(max_iter=100, learning_rate=0.3, max_depth=5)
    ),
    "default-empty-d4-100": msgspec.structs.replace(
        ModelSettings(), empty=Boosting(max_iter=100, learning_rate=0.3, max_depth=4)
    ),
    "default-empty-d4-150": msgspec.structs.replace(
        ModelSettings(), empty=Boosting(max_iter=150, learning_rate=0.3, max_depth=4)
    ),
}
# The figures a lever is judged on: (label, metrics group, key).
COLUMNS: Final = (
    ("count MAE/oracle", "result_count", "mae_over_oracle"),
    ("dur MAE/oracle", "duration_s", "mae_over_oracle"),
    ("count cov", "result_count", "coverage_90"),
    ("count cov t1/t2/t3", "result_count", "coverage_90_tercile"),
    ("dur cov", "duration_s", "coverage_90"),
    ("dur cov t1/t2/t3", "duration_s", "coverage_90_tercile"),
    ("AUC", "empty", "roc_auc"),
    ("ECE", "empty", "ece"),
)


class FoldResult(msgspec.Struct, frozen=True, kw_only=True):
    """One fold: its test users' count and rows, and every metric on them."""

    fold: int
    test_users: int
    test_rows: int
    metrics: dict[str, dict[str, float]]


class LeverResult(msgspec.Struct, frozen=True, kw_only=True):
    """A lever over all folds: mean metrics, trees, and the one-row cost when measured."""

    lever: str
    settings: ModelSettings
    data: str
    rows: int
    trees: int
    row_cost_us: float | None
    mean: dict[str, dict[str, float]]
    folds: list[FoldResult]


def grouped_folds(data: Dataset, folds: int, seed: int) -> list[np.ndarray]:
    """Row masks of `folds` test folds: users in a seeded order, dealt round-robin."""
    users, row_user = np.unique(data.users, return_inverse=True)
    if users.size < 3 * folds:
        raise TrainError(
            f"{users.size} users is too few for {folds} folds: expected >= {3 * folds}"
        )
    fold_of_user = np.empty(users.size, dtype=np.int64)
    fold_of_user[np.random.default_rng(seed).permutation(users.size)] = (
        np.arange(users.size) % folds
    )
    return [fold_of_user[row_user] == f for f in range(folds)]


def _trees(settings: ModelSettings) -> int:
    quantile = 4 * settings.quantile.max_iter
    return settings.count.max_iter + settings.duration.max_iter + settings.empty.max_iter + quantile


def _mean(folds: Sequence[FoldResult]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for group, values in folds[0].metrics.items():
        out[group] = {
            key: float(np.mean([f.metrics[group][key] for f in folds if key in f.metrics[group]]))
            for key in values
        }
    return out


def cross_validate(
    data: Dataset,
    lever: str,
    settings: ModelSettings,
    *,
    folds: int,
    seed: int,
    latency: bool,
    data_name: str,
) -> LeverResult:
    """Fit and score `settings` on every grouped fold (one OpenMP thread, like `just train`)."""
    results = []
    cost: float | None = None
    split = FitSettings(seed=seed, test_share=0.0, calibration_share=0.25)
    with threadpool_limits(limits=1, user_api="openmp"):
        for f, test_mask in enumerate(grouped_folds(data, folds, seed)):
            rest = data.take(np.flatnonzero(~test_mask))
            test = data.take(np.flatnonzero(test_mask))
            splits = split_dataset(rest, split)
            # The split gives its first user to test; those rows rejoin training.
            train = splits.train.concat(splits.test)
            models = fit_models(train, splits.calibration, settings)
            metrics = population_metrics(predict_outputs(models, test.features), test)
            results.append(
                FoldResult(
                    fold=f,
                    test_users=int(np.unique(test.users).size),
                    test_rows=len(test),
                    metrics=metrics,
                )
            )
            if latency and f == 0:
                from export.graph import build_graph  # export only when asked to time
                from export.latency import row_cost_us

                graph = build_graph(models).SerializeToString()
                cost = row_cost_us(graph, test.features[:2000])
    return LeverResult(
        lever=lever,
        settings=settings,
        data=data_name,
        rows=len(data),
        trees=_trees(settings),
        row_cost_us=cost,
        mean=_mean(results),
        folds=results,
    )


def _cell(mean: dict[str, dict[str, float]], group: str, key: str) -> str:
    values = mean.get(group, {})
    if key.endswith("_tercile"):
        return "/".join(f"{values.get(f'{key}_{t}', float('nan')):.3f}" for t in (1, 2, 3))
    value = values.get(key)
    return "n/a" if value is None else f"{value:.4f}"


def results_table(results: Sequence[LeverResult], folds: int) -> Table:
    """One row per lever: trees, µs a row, and the fold mean of every bar's metric."""
    table = Table(title=f"grouped {folds}-fold cross-validation (users never seen)")
    for column in ("lever", "rows", "trees", "µs/row", *(label for label, _, _ in COLUMNS)):
        table.add_column(column, justify="left" if column == "lever" else "right")
    for r in results:
        cost = "-" if r.row_cost_us is None else f"{r.row_cost_us:.1f}"
        cells = [_cell(r.mean, group, key) for _, group, key in COLUMNS]
        table.add_row(r.lever, f"{r.rows:,}", str(r.trees), cost, *cells)
    return table


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="python -m train.crossval", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/scan_history.jsonl"))
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lever", action="append", choices=sorted(LEVERS), default=None)
    parser.add_argument("--latency", action="store_true", help="time a one-row run of fold 0")
    parser.add_argument("--out", type=Path, default=Path("var/crossval"))
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error(f"--folds must be at least 2, got {args.folds}")
    console = Console()
    try:
        data = dataset_from_records(load_history(args.data).records)
    except HistoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for lever in args.lever or ["default"]:
        with console.status(f"{lever}: {args.folds} grouped folds"):
            try:
                result = cross_validate(
                    data,
                    lever,
                    LEVERS[lever],
                    folds=args.folds,
                    seed=args.seed,
                    latency=args.latency,
                    data_name=str(args.data),
                )
            except TrainError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        stem = f"{lever}-{args.data.stem}"
        (args.out / f"{stem}.json").write_bytes(
            msgspec.json.format(msgspec.json.encode(result), indent=2)
        )
        results.append(result)
        console.print(results_table([result], args.folds))
    console.print(results_table(results, args.folds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
