"""The pictures of a training run (PNG, matplotlib Agg): what people look at first.

predicted_vs_actual.png   both regressors on the test split, with their 90% intervals
residuals.png             residual against prediction, per regressor
importances.png           permutation importances, top features per target
learning_curve.png        test MAE versus training users, with the oracle floor
calibration.png           p_empty reliability diagram
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI

import matplotlib.pyplot as plt  # after use(): the backend is chosen first
import numpy as np

from train.targets import COUNT_OVER_ORACLE_MAX, DURATION_OVER_ORACLE_MAX
from train.training import TrainResult

__all__ = ["write_plots"]

_TARGETS = (("result_count", "result count"), ("duration_s", "duration (s)"))
_BARS: Final = {"result_count": COUNT_OVER_ORACLE_MAX, "duration_s": DURATION_OVER_ORACLE_MAX}


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _predicted_vs_actual(result: TrainResult, path: Path) -> Path:
    test, out = result.splits.test, result.test_outputs
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, (key, label) in zip(axes, _TARGETS, strict=True):
        actual = getattr(test, key)
        order = np.argsort(out[key])
        ax.fill_between(
            out[key][order] + 1,
            out[f"{key}_lo"][order] + 1,
            out[f"{key}_hi"][order] + 1,
            color="tab:blue",
            alpha=0.15,
            label="90% interval",
        )
        ax.scatter(out[key] + 1, actual + 1, s=4, alpha=0.35, color="tab:blue", label="test scans")
        top = float(max(actual.max(), out[key].max())) + 1
        ax.plot([1, top], [1, top], color="black", lw=1, label="perfect")
        ax.set(xscale="log", yscale="log", xlabel=f"predicted {label} + 1", ylabel="actual + 1")
        ax.set_title(f"{label}: MAE {result.metrics[key]['mae']:.2f}")
        ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def _residuals(result: TrainResult, path: Path) -> Path:
    test, out = result.splits.test, result.test_outputs
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, (key, label) in zip(axes, _TARGETS, strict=True):
        residual = getattr(test, key) - out[key]
        ax.scatter(out[key], residual, s=4, alpha=0.35)
        ax.axhline(0, color="black", lw=1)
        ax.set(xscale="symlog", xlabel=f"predicted {label}", ylabel="actual - predicted")
        ax.set_xlim(left=0)
        ax.set_title(f"{label} residuals")
    return _save(fig, path)


def _importances(result: TrainResult, path: Path, top: int = 12) -> Path:
    targets = list(result.importances)
    fig, axes = plt.subplots(1, len(targets), figsize=(5.5 * len(targets), 5), squeeze=False)
    units = {"result_count": "MAE increase", "duration_s": "MAE increase (s)", "empty": "AUC drop"}
    for ax, target in zip(axes[0], targets, strict=True):
        ranked = sorted(result.importances[target].items(), key=lambda kv: kv[1])[-top:]
        ax.barh([k for k, _ in ranked], [v for _, v in ranked], color="tab:green")
        ax.set(title=f"{target}: permutation importance", xlabel=units.get(target, "score drop"))
        ax.tick_params(axis="y", labelsize=8)
    return _save(fig, path)


def _learning_curve(result: TrainResult, path: Path) -> Path:
    users = [p.users for p in result.learning_curve]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    curves = (
        ("result_count", [p.result_count_mae for p in result.learning_curve]),
        ("duration_s", [p.duration_s_mae for p in result.learning_curve]),
    )
    for ax, (key, mae) in zip(axes, curves, strict=True):
        ax.plot(users, mae, marker="o", label="test MAE (users never seen)")
        oracle = result.metrics[key].get("oracle_mae")
        if oracle is not None:
            ax.axhline(oracle, color="grey", ls="--", label="oracle MAE (noise floor)")
            bar = _BARS[key]
            ax.axhline(bar * oracle, color="red", ls=":", label=f"bar: {bar:.2f} x oracle")
        ax.set(xscale="log", xlabel="training users", ylabel="MAE", title=f"{key} learning curve")
        ax.legend(fontsize=8)
    return _save(fig, path)


def _calibration(result: TrainResult, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    bins = result.calibration
    ax.plot([0, 1], [0, 1], color="black", lw=1, label="perfectly calibrated")
    ax.plot(
        [b.mean_predicted for b in bins],
        [b.observed_rate for b in bins],
        marker="o",
        label="p_empty on the test split",
    )
    for b in bins:
        ax.annotate(str(b.count), (b.mean_predicted, b.observed_rate), fontsize=7, alpha=0.7)
    auc = result.metrics["empty"].get("roc_auc")
    title = "p_empty calibration" + (f" (ROC AUC {auc:.3f})" if auc is not None else "")
    ax.set(xlabel="mean predicted p_empty", ylabel="observed empty rate", title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def write_plots(result: TrainResult, out_dir: Path) -> list[Path]:
    """Write every plot the run has data for into `out_dir`; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        _predicted_vs_actual(result, out_dir / "predicted_vs_actual.png"),
        _residuals(result, out_dir / "residuals.png"),
        _calibration(result, out_dir / "calibration.png"),
    ]
    if result.importances:
        paths.append(_importances(result, out_dir / "importances.png"))
    if result.learning_curve:
        paths.append(_learning_curve(result, out_dir / "learning_curve.png"))
    return paths
