"""How alike consecutive rows of the training history are, measured at export for drift.

Drift thresholds (server.monitoring.drift) are quantiles of each score on windows drawn
from the reference. Drawn as independent rows, those windows are far more varied than
live windows: a live window is a stretch of time, and in a stretch of time the model's
outputs follow the day's VIX, and the traffic as a whole comes from one population of
people re-running their own saved scans. So at export every column that can alarm gets
Kish design effects (deff: a variance of bin shares over the multinomial variance
p (1 - p) / n at the same number of rows, summed over bins), all from the training
history in time order and its user ids:

- `windows`: at each window size (256, 512, ... rows, while the history holds at least
  MIN_WINDOWS non-overlapping windows of it), the variance of a window's bin shares over
  the non-overlapping contiguous windows of the history;
- `users`: the variance of the whole history's bin shares when its users are resampled
  (cluster sampling: a different set of people gives a different reference);
- `autocorrelation`: the integrated autocorrelation time of each bin's indicator along the
  history (Geyer's initial positive sequence), in rows: a persistent level such as the VIX
  makes a year hold far fewer independent observations than rows.

The server turns them into an effective number of rows per window (its docstring says
how). Why design effects and not an empirical quantile of the scores on windows of the
history: thresholds sit at the 1 - 0.01/T quantile (T ~ 70 tests), which needs thousands of
independent windows to estimate, and a year of history holds 280 windows of 256 rows and 8
of 8,192; a variance ratio is estimated from tens of windows (relative standard error
about sqrt(2 / (K - 1)) from K windows), and the tail then comes from the multinomial at
the effective size, whose shape is known.

    python -m export.drift [--artifacts artifacts] [--version V] [--history PATH] [--seed 0]

(`just drift-calibrate`) adds the calibration to a version exported before it, in place:
its training rows found again from the history it was trained on, its outputs from its own
graph; the model and every hashed file stay as they are. With the calibration the
manifest also gets the drift thresholds at every window size the server scores
(`drift_thresholds`, server.monitoring.drift.calibrate_every_size), so that no serving
worker spends the CPU on them; `--thresholds-only` (re)computes those alone from a
manifest that has its calibration, without the history.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt
from rich.console import Console

from export.artifacts import ArtifactError, read_current, version_dir
from export.manifest import ManifestError, decode_manifest, read_manifest
from export.parity import open_session, run_graph
from server.domain.artifact import (
    MANIFEST_FILE,
    DriftCalibration,
    DriftDesign,
    Manifest,
    ReferenceDistribution,
)
from server.domain.features import FEATURE_NAMES
from server.monitoring.drift import Column, Reference, bin_values, calibrate_every_size
from train.data import Dataset, HistoryError, dataset_from_records, load_history
from train.training import FitSettings, split_dataset

__all__ = [
    "FIRST_WINDOW_ROWS",
    "METHOD",
    "MIN_WINDOWS",
    "ExportError",
    "add_thresholds",
    "autocorrelation_time",
    "drift_calibration",
    "history_columns",
    "main",
    "recalibrate_version",
    "user_design_effect",
    "version_calibration",
    "window_design_effect",
    "with_thresholds",
]

METHOD: Final = "kish1"
FIRST_WINDOW_ROWS: Final = 256  # server.monitoring.drift.MIN_ROWS: smaller windows are not scored
# Fewer windows than this give a variance too rough to use (relative error > 50%).
MIN_WINDOWS: Final = 8

Floats = npt.NDArray[np.float64]


def _one_hot(bins: npt.NDArray[np.int64], n_bins: int) -> Floats:
    out = np.zeros((bins.size, n_bins))
    out[np.arange(bins.size), bins] = 1.0
    return out


def _ratio(variance: Floats, p: Floats, rows: float) -> float:
    """Summed variance over summed multinomial variance p (1 - p) / rows."""
    multinomial = float((p * (1.0 - p)).sum()) / rows
    return float(variance.sum()) / multinomial if multinomial > 0 else 1.0


def window_design_effect(bins: npt.NDArray[np.int64], n_bins: int, rows: int) -> float:
    """deff of a window's bin shares over the non-overlapping windows of `rows` rows."""
    k = bins.size // rows
    counts = np.zeros((k, n_bins))
    np.add.at(counts, (np.repeat(np.arange(k), rows), bins[: k * rows]), 1.0)
    shares = counts / rows
    return _ratio(shares.var(axis=0, ddof=1), shares.mean(axis=0), rows)


def user_design_effect(
    bins: npt.NDArray[np.int64], n_bins: int, users: npt.NDArray[np.int64]
) -> float:
    """deff of the whole history's bin shares with users as the sampled clusters."""
    n = bins.size
    n_users = int(users.max()) + 1
    if n_users < 2:
        return 1.0
    counts = np.zeros((n_users, n_bins))
    np.add.at(counts, (users, bins), 1.0)
    size = counts.sum(axis=1, keepdims=True)
    p = counts.sum(axis=0) / n
    variance = n_users / (n_users - 1) * ((counts - size * p) ** 2).sum(axis=0) / n**2
    return _ratio(variance, p, n)


def autocorrelation_time(bins: npt.NDArray[np.int64], n_bins: int) -> float:
    """Integrated autocorrelation time of the bin indicators (rows), p (1 - p)-weighted."""
    n = bins.size
    x = _one_hot(bins, n_bins)
    p = x.mean(axis=0)
    weight = p * (1.0 - p)
    keep = weight > 0
    if not keep.any():
        return 1.0
    x = x[:, keep] - p[keep]
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(x, n=size, axis=0)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=0)[:n] / n
    rho = acov / acov[0]
    taus = []
    for column in rho.T:
        # Geyer: sums of adjacent pairs are positive for a reversible chain; stop at the
        # first that is not (beyond it the estimate is noise).
        pairs = column[: 2 * (n // 2)].reshape(-1, 2).sum(axis=1)
        stop = np.flatnonzero(pairs <= 0)
        m = int(stop[0]) if stop.size else pairs.size
        taus.append(max(1.0, -1.0 + 2.0 * float(pairs[:m].sum())))
    return float(np.average(taus, weights=weight[keep]))


def _design(
    column: Column,
    values: Floats,
    users: npt.NDArray[np.int64],
    window_rows: list[int],
) -> DriftDesign:
    bins = bin_values(column, values)
    n_bins = column.n_bins
    return DriftDesign(
        windows=[round(window_design_effect(bins, n_bins, r), 4) for r in window_rows],
        users=round(user_design_effect(bins, n_bins, users), 4),
        autocorrelation=round(autocorrelation_time(bins, n_bins), 4),
    )


def drift_calibration(
    reference: Reference, history: Mapping[str, Floats], users: npt.ArrayLike
) -> DriftCalibration | None:
    """Design effects of every column that can alarm, from `history` (column -> values of
    the training history in time order) and each row's user; None when the history holds
    fewer than MIN_WINDOWS windows of FIRST_WINDOW_ROWS rows (the server then calibrates
    on independent rows and says so)."""
    user_ids = np.unique(np.asarray(users), return_inverse=True)[1].astype(np.int64)
    n = user_ids.size
    window_rows = []
    rows = FIRST_WINDOW_ROWS
    while n // rows >= MIN_WINDOWS:
        window_rows.append(rows)
        rows *= 2
    if not window_rows:
        return None
    columns = {
        c.name: _design(c, np.asarray(history[c.name], dtype=np.float64), user_ids, window_rows)
        for c in reference.columns
        if c.alarms
    }
    return DriftCalibration(
        method=METHOD,
        history_rows=n,
        users=int(user_ids.max()) + 1,
        window_rows=window_rows,
        windows=[n // r for r in window_rows],
        columns=columns,
    )


def history_columns(
    features: npt.NDArray[np.float32], outputs: Mapping[str, npt.ArrayLike]
) -> dict[str, Floats]:
    """Every column by name, as the server counts them: features, then the model outputs."""
    columns = {name: features[:, i].astype(np.float64) for i, name in enumerate(FEATURE_NAMES)}
    columns.update({name: np.asarray(v, dtype=np.float64) for name, v in outputs.items()})
    return columns


def version_calibration(
    version: str,
    reference: Mapping[str, ReferenceDistribution],
    model_bytes: bytes,
    history: Dataset,
) -> DriftCalibration | None:
    """The calibration of a version: `history` (its training rows, in time order) through
    its graph, so the outputs are the ones the server will count."""
    outputs = run_graph(open_session(model_bytes), history.features)
    columns = history_columns(history.features, outputs)
    return drift_calibration(Reference.build(version, reference), columns, history.users)


def recalibrate_version(folder: Path, history_path: Path, seed: int = 0) -> Manifest:
    """Add the drift calibration to the manifest of the version in `folder`, in place.

    The version's training rows are found again: the history at `history_path` must be
    the one it was trained on (its sha256 in the manifest) and the split of `seed` must
    give as many training rows as the manifest records. Nothing else in the folder changes
    (model.onnx, parity fixture, report), so its predictions are the same.
    """
    manifest = read_manifest(folder / MANIFEST_FILE)
    history = load_history(history_path)
    if history.sha256 != manifest.training_data.sha256:
        raise ExportError(
            f"{history_path}: sha256 {history.sha256[:12]}.. is not the training data of "
            f"{manifest.version} ({manifest.training_data.sha256[:12]}..): expected its history"
        )
    train = split_dataset(dataset_from_records(history.records), FitSettings(seed=seed)).train
    expected = manifest.metrics.get("training", {}).get("rows_train")
    if expected is not None and int(expected) != len(train):
        raise ExportError(
            f"seed {seed} splits {len(train)} training rows, {manifest.version} was trained on "
            f"{int(expected)}: expected the seed it was trained with (--seed)"
        )
    model_bytes = (folder / manifest.model_file).read_bytes()
    calibration = version_calibration(manifest.version, manifest.reference, model_bytes, train)
    if calibration is None:
        raise ExportError(f"{len(train)} training rows are too few for a drift calibration")
    calibrated = with_thresholds(msgspec.structs.replace(manifest, drift=calibration))
    return _rewrite_manifest(
        folder,
        {
            "drift": msgspec.to_builtins(calibration),
            "drift_thresholds": msgspec.to_builtins(calibrated.drift_thresholds),
        },
    )


def with_thresholds(manifest: Manifest) -> Manifest:
    """`manifest` with the drift thresholds a server would calibrate for it, computed from
    the manifest as the server reads it (none without design effects)."""
    return msgspec.structs.replace(
        manifest, drift_thresholds=calibrate_every_size(Reference.of(manifest))
    )


def add_thresholds(folder: Path) -> Manifest:
    """Calibrate the drift thresholds of the version in `folder` from its manifest alone
    (its reference and drift calibration) and add them to it, in place, so no serving
    worker calibrates them; nothing else in the folder changes."""
    manifest = read_manifest(folder / MANIFEST_FILE)
    if manifest.drift is None:
        raise ExportError(
            f"{folder / MANIFEST_FILE}: no drift calibration: expected one first "
            "(run without --thresholds-only, with the history the version was trained on)"
        )
    thresholds = with_thresholds(manifest).drift_thresholds
    return _rewrite_manifest(folder, {"drift_thresholds": msgspec.to_builtins(thresholds)})


def _rewrite_manifest(folder: Path, keys: Mapping[str, object]) -> Manifest:
    """The manifest's JSON as written, with `keys` set: its other values keep their text
    (a decoded Manifest would write the feature spec's integers as floats). Checked as a
    manifest, then swapped in with a rename."""
    document = msgspec.json.decode((folder / MANIFEST_FILE).read_bytes())
    document.update(keys)
    data = msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"
    updated = decode_manifest(data, folder / MANIFEST_FILE)
    staging = folder / f".{MANIFEST_FILE}.tmp"
    staging.write_bytes(data)
    os.replace(staging, folder / MANIFEST_FILE)
    return updated


class ExportError(Exception):
    """The calibration cannot be added; one line naming the path and what was expected."""


def main(argv: Sequence[str] | None = None) -> int:
    """`just drift-calibrate`: add the calibration to an existing version's manifest."""
    parser = argparse.ArgumentParser(
        prog="python -m export.drift",
        description="add the drift calibration (design effects of the time-ordered training "
        "history) to a version's manifest, in place; the model is untouched",
    )
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--version", help="default: the one artifacts/current names")
    parser.add_argument("--history", type=Path, default=Path("data/scan_history.jsonl"))
    parser.add_argument("--seed", type=int, default=0, help="the seed the version was trained with")
    parser.add_argument(
        "--thresholds-only",
        action="store_true",
        help="keep the manifest's drift calibration and only (re)calibrate the drift "
        "thresholds from it (no history needed)",
    )
    args = parser.parse_args(argv)
    console = Console()
    try:
        version = args.version or read_current(args.artifacts)
        if version is None:
            raise ExportError(f"{args.artifacts / 'current'}: no such file: expected --version")
        folder = version_dir(args.artifacts, version)
        if args.thresholds_only:
            manifest = add_thresholds(folder)
        else:
            manifest = recalibrate_version(folder, args.history, args.seed)
    except (ExportError, ArtifactError, ManifestError, HistoryError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    assert manifest.drift is not None
    console.print(
        f"{version}: drift calibration {manifest.drift.method} on {manifest.drift.history_rows:,} "
        f"rows of {manifest.drift.users} users, windows of {manifest.drift.window_rows}"
    )
    shipped = manifest.drift_thresholds
    console.print(
        "drift thresholds: "
        + (
            f"{[t.rows for t in shipped.windows]} rows ({shipped.method})"
            if shipped is not None
            else "none (a column has no design effects: the server calibrates them)"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
