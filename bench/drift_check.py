"""`python -m bench.drift_check` (`just drift-check`): the drift thresholds' measured rates.

For the model at artifacts/current and each window size, thresholds are calibrated as the
server calibrates them (server.monitoring.drift.calibrate), then:

- false alarms on independent windows: `--windows` windows drawn from the reference
  histograms themselves (each column's counts multinomial from its shares, columns
  independent) and the share of windows in which any alarmed column alarms;
- false alarms on time-ordered windows, the way live windows arise: a held-out year of
  scan history from the default market model and people (train.habits, a seed the
  training history did not use), its served features and the model's outputs, and
  `--windows` windows of consecutive rows in time order (a random stretch of time holding
  that many rows), the share in which any column alarms;
- detection: windows from the reference with one stated shift applied, and the share of
  first windows that alarm on the shifted column(s): the volatility regime (every row of a
  window at one day's VIX, drawn around 40, sd 6, instead of the reference's ~18) and the
  universe mix moving to us_all.

Exit status 1 when a false-alarm rate exceeds the stated 1% or a shift is missed in more
than 1% of windows.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from rich.console import Console
from rich.table import Table

from server.domain.artifact import MANIFEST_FILE, MODELS_DIR, Manifest
from server.domain.features import FEATURE_NAMES
from server.domain.scan import UNIVERSE_SIZES, Universe
from server.inference.clock import served_matrix
from server.monitoring.drift import (
    FALSE_ALARM_RATE,
    Reference,
    Thresholds,
    bin_values,
    calibrate,
    score,
)
from train.habits import sample_scans

__all__ = ["heldout_history", "main", "measure", "time_ordered_rate"]

SIZES: Final = (256, 1024, 8192)
# A seed the committed training history (train.generate's default) did not use.
HELDOUT_SEED: Final = 12_345
HELDOUT_ROWS: Final = 60_000
Shifted = Callable[[np.random.Generator, int], dict[str, np.ndarray]]
SHIFTS: Final[dict[str, Shifted]] = {
    # One market-wide level per window (a day's VIX), as live windows see it.
    "volatility ~18 -> ~40": lambda rng, n: {
        "volatility_index": np.full(n, float(rng.normal(40.0, 6.0))).clip(5, 90)
    },
    "universe mix -> us_all": lambda rng, n: {
        "universe_size": np.full(n, float(UNIVERSE_SIZES[Universe.US_ALL])),
        "universe_is_us_all": np.ones(n),
    },
}


def measure(
    reference: Reference, rows: int, windows: int, seed: int
) -> tuple[float, dict[str, float]]:
    """(false-alarm rate, detection rate per shift) for windows of `rows` rows."""
    thresholds = calibrate(reference, rows)
    rng = np.random.default_rng(seed)
    alarmed = np.zeros(windows, dtype=bool)
    columns = {c.name: c for c in reference.columns}
    for column in reference.columns:
        if column.name not in thresholds.values:  # a clock column: never alarms
            continue
        p = np.asarray(column.shares) / sum(column.shares)
        counts = np.zeros((windows, column.n_bins))
        counts[:, : len(p)] = rng.multinomial(rows, p, size=windows)
        for name in column.scores:
            alarmed |= score(column, name, counts) > thresholds.values[column.name][name]
    detected: dict[str, float] = {}
    for label, shift in SHIFTS.items():
        caught = 0
        for _ in range(windows // 10):
            values = shift(rng, rows)
            hit = True
            for name, v in values.items():
                col = columns[name]
                counts = np.bincount(bin_values(col, v), minlength=col.n_bins).astype(float)
                limits = thresholds.values[name]
                hit &= any(float(score(col, s, counts)) > limits[s] for s in col.scores)
            caught += hit
        detected[label] = caught / (windows // 10)
    return float(alarmed.mean()), detected


def heldout_history(model: Path, rows: int = HELDOUT_ROWS) -> dict[str, npt.NDArray[np.float64]]:
    """Every column of a held-out year in time order: served features, then the outputs."""
    scans = sample_scans(np.random.default_rng(HELDOUT_SEED), rows)
    features = served_matrix(scans)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = session.run(names, {session.get_inputs()[0].name: features})
    columns = {name: features[:, i].astype(np.float64) for i, name in enumerate(FEATURE_NAMES)}
    columns.update(
        {name: np.asarray(v, dtype=np.float64) for name, v in zip(names, outputs, strict=True)}
    )
    return columns


def time_ordered_rate(
    reference: Reference,
    thresholds: Thresholds,
    history: dict[str, npt.NDArray[np.float64]],
    rows: int,
    windows: int,
    seed: int,
) -> tuple[float, dict[str, int]]:
    """(share of windows of `rows` consecutive rows that alarm, alarms per column)."""
    n = len(next(iter(history.values())))
    starts = np.random.default_rng(seed).integers(0, n - rows + 1, windows)
    alarmed = np.zeros(windows, dtype=bool)
    per_column: dict[str, int] = {}
    offsets = np.arange(rows)
    for column in reference.columns:
        limits = thresholds.values.get(column.name)
        if limits is None:
            continue
        bins = bin_values(column, history[column.name])
        counts = np.zeros((windows, column.n_bins))
        np.add.at(counts, (np.arange(windows)[:, None], bins[starts[:, None] + offsets]), 1.0)
        hit = np.zeros(windows, dtype=bool)
        for name in column.scores:
            hit |= score(column, name, counts) > limits[name]
        if hit.any():
            per_column[column.name] = int(hit.sum())
        alarmed |= hit
    return float(alarmed.mean()), per_column


def main(argv: Sequence[str] | None = None) -> int:
    """Print the rates per window size; 1 when a stated rate is missed."""
    parser = argparse.ArgumentParser(prog="just drift-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--windows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    version = (args.artifacts / "current").read_text().strip()
    path = args.artifacts / MODELS_DIR / version / MANIFEST_FILE
    reference = Reference.of(msgspec.json.decode(path.read_bytes(), type=Manifest))
    history = heldout_history(path.parent / "model.onnx")
    console = Console()
    table = Table(
        title=f"drift thresholds of {version} ({reference.tests} tests that can alarm, "
        f"{len(reference.columns)} columns)"
    )
    for column in ("rows per window", "false alarms", "time-ordered false alarms", *SHIFTS):
        table.add_column(column, justify="right")
    ok = True
    notes = []
    for rows in SIZES:
        far, detected = measure(reference, rows, args.windows, args.seed)
        thresholds = calibrate(reference, rows)
        ordered, per_column = time_ordered_rate(
            reference, thresholds, history, rows, args.windows, args.seed
        )
        ok &= max(far, ordered) <= FALSE_ALARM_RATE
        ok &= all(d >= 1 - FALSE_ALARM_RATE for d in detected.values())
        table.add_row(
            f"{rows:,}",
            f"{far * 100:.2f}% of {args.windows:,}",
            f"{ordered * 100:.2f}% of {args.windows:,}",
            *(f"{d * 100:.1f}% of {args.windows // 10:,}" for d in detected.values()),
        )
        if per_column:
            worst = sorted(per_column.items(), key=lambda kv: -kv[1])[:6]
            notes.append(f"{rows:,} rows, time-ordered alarms by column: {dict(worst)}")
    console.print(table)
    for note in notes:
        console.print(note)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
