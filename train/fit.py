"""`just train`: fit the three models on the scan history and report how good they are.

    python -m train.fit [--data data/scan_history.jsonl] [--out var/train] [--seed 0]
                        [--on-bad-line fail|skip] [--quick]

Writes into --out: metrics.json (metrics, calibration table, importances, learning curve,
target verdicts), the PNG plots, and models.joblib, the fitted scikit-learn objects that
`just export` converts. The joblib file is offline-only: the server never unpickles; only
ONNX and JSON reach artifacts/. Prints a verdict table of the targets; exits 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NoReturn

import joblib
import msgspec
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from server.domain.artifact import CalibrationBin, TrainingData
from train.data import BadLine, HistoryError, dataset_from_records, load_history
from train.evaluate import LearningPoint
from train.plots import write_plots
from train.targets import TargetCheck, check_targets, verdict_table
from train.training import FitSettings, TrainError, TrainResult, train_models

__all__ = ["BUNDLE_FILE", "METRICS_FILE", "FitReport", "main", "run_fit"]

BUNDLE_FILE: Final = "models.joblib"
METRICS_FILE: Final = "metrics.json"


class FitReport(msgspec.Struct, frozen=True, kw_only=True):
    """metrics.json: what a training run measured."""

    training_data: TrainingData
    metrics: dict[str, dict[str, float]]
    calibration: list[CalibrationBin]
    importances: dict[str, dict[str, float]]
    learning_curve: list[LearningPoint]
    targets: list[TargetCheck]
    bad_lines: list[BadLine]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m train.fit", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/scan_history.jsonl"))
    parser.add_argument("--out", type=Path, default=Path("var/train"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--on-bad-line",
        choices=("fail", "skip"),
        default="fail",
        help="a malformed or schema-violating line stops the run (fail) or is dropped (skip)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny models, no learning curve or importances"
    )
    return parser


def run_fit(
    data: Path, out: Path, settings: FitSettings, on_bad_line: str, console: Console
) -> tuple[TrainResult, FitReport]:
    """Load, train, write metrics.json, plots and the bundle.

    Raises HistoryError or TrainError on bad input.
    """
    started = time.perf_counter()
    started_cpu = time.process_time()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("load history", total=None)

        def step(label: str) -> None:
            progress.update(task, description=label)

        history = load_history(data, on_bad_line="skip" if on_bad_line == "skip" else "fail")
        training_data = TrainingData(
            path=str(data),
            sha256=history.sha256,
            rows=len(history.records),
            rejected_rows=len(history.bad_lines),
        )
        result = train_models(
            dataset_from_records(history.records), training_data, settings, on_step=step
        )
        step("plots")
        out.mkdir(parents=True, exist_ok=True)
        plots = write_plots(result, out)
    # The bar is on the whole `just train`: loading, fitting, evaluating and drawing.
    seconds = time.perf_counter() - started
    # CPU seconds of this process (all its threads): on a machine shared with other work
    # the wall time measures the neighbours too; with one OpenMP thread the two agree
    # when the machine is idle.
    cpu_seconds = time.process_time() - started_cpu
    training = {**result.metrics["training"], "seconds": seconds, "cpu_seconds": cpu_seconds}
    metrics = {**result.metrics, "training": training}
    result = msgspec.structs.replace(result, metrics=metrics)
    report = FitReport(
        training_data=training_data,
        metrics=metrics,
        calibration=result.calibration,
        importances=result.importances,
        learning_curve=result.learning_curve,
        targets=check_targets(metrics),
        bad_lines=history.bad_lines,
    )
    (out / METRICS_FILE).write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=2))
    joblib.dump(result, out / BUNDLE_FILE, compress=3)
    for bad in history.bad_lines[:5]:
        console.print(f"[yellow]skipped[/] {bad.describe()}", markup=True, highlight=False)
    if len(history.bad_lines) > 5:
        console.print(f"[yellow]skipped {len(history.bad_lines) - 5} more bad lines[/]")
    console.print(
        f"trained on {training_data.rows} records ({training_data.rejected_rows} rejected) "
        f"in {seconds:.1f} s ({cpu_seconds:.1f} CPU-s); wrote {out / METRICS_FILE}, "
        f"{len(plots)} plots, {out / BUNDLE_FILE}"
    )
    return result, report


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    settings = FitSettings.quick(args.seed) if args.quick else FitSettings(seed=args.seed)
    try:
        _, report = run_fit(args.data, args.out, settings, args.on_bad_line, console)
    except (HistoryError, TrainError) as exc:
        # Plain print: one line, whatever the terminal width or brackets in the message.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    console.print(verdict_table(report.targets, title="Targets (test split)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
