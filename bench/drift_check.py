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
- detection: `--shifted` windows of consecutive held-out scans with one stated shift
  applied to their features and the model run on them, and the share of those first
  windows in which any column alarms: the universe mix moving to us_all (every scan on
  the whole US market), and the volatility regime of the issue (every row of a window at
  one day's VIX, drawn around 40, sd 6, instead of the reference's ~18); then one window
  at a VIX of 40, 60 and 80 (a quarter as many windows each), and the smallest of them
  caught in 99% of first windows ("none": no level is).

Exit status 1 when a false-alarm rate exceeds the stated 1% or the universe shift is
missed in more than 1% of windows. The VIX cannot be a pass condition: one window holds
one market level, and the training year's levels are worth a handful of independent ones
(server.monitoring.drift, `D`), so no level is rarer than about one in a few under the
reference's own uncertainty, while an alarm at the stated rate needs 0.01 / T; and the
model's trees are flat beyond the training year's largest VIX, so its outputs do not move
either. The table shows the figures.
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

from server.domain.artifact import MANIFEST_FILE, MODELS_DIR, Manifest, Thresholds
from server.domain.features import FEATURE_NAMES
from server.domain.scan import UNIVERSE_SIZES, Universe
from server.inference.clock import served_matrix
from server.monitoring.drift import (
    FALSE_ALARM_RATE,
    Reference,
    bin_values,
    calibrate,
    score,
)
from train.habits import sample_scans

__all__ = [
    "HeldOut",
    "detection_rate",
    "heldout_history",
    "main",
    "measure",
    "time_ordered_rate",
    "us_all_shift",
    "vix_shift",
]

SIZES: Final = (256, 1024, 8192)
# A seed the committed training history (train.generate's default) did not use.
HELDOUT_SEED: Final = 12_345
HELDOUT_ROWS: Final = 60_000
# Levels of one window's VIX tried for the shift one window can show (the issue's ~40 first).
VIX_LEVELS: Final = (40.0, 60.0, 80.0)
_COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}
Features = npt.NDArray[np.float32]
Shift = Callable[[np.random.Generator, Features], None]


def vix_shift(mean: float, sd: float = 0.0) -> Shift:
    """Every row of the window at one day's VIX (drawn around `mean`, sd `sd`), each row
    within 3% of it, as train.habits draws a day's scans."""

    def shift(rng: np.random.Generator, window: Features) -> None:
        level = float(np.clip(rng.normal(mean, sd), 5.0, 90.0))
        noise = np.exp(rng.normal(0.0, 0.03, len(window)))
        window[:, _COLUMN["volatility_index"]] = np.clip(level * noise, 5.0, 90.0)

    return shift


def us_all_shift(rng: np.random.Generator, window: Features) -> None:
    """Every scan of the window on the whole US market (each one's own other settings)."""
    size = float(UNIVERSE_SIZES[Universe.US_ALL])
    for u in Universe:
        window[:, _COLUMN[f"universe_is_{u.value}"]] = float(u is Universe.US_ALL)
    window[:, _COLUMN["universe_size"]] = size
    window[:, _COLUMN["symbol_bars"]] = size * window[:, _COLUMN["lookback_bars"]]


SHIFTS: Final[dict[str, Shift]] = {
    "VIX ~18 -> ~40": vix_shift(40.0, 6.0),
    "universe mix -> us_all": us_all_shift,
}


def measure(reference: Reference, thresholds: Thresholds, windows: int, seed: int) -> float:
    """The share of windows of independent rows drawn from the reference that alarm."""
    rng = np.random.default_rng(seed)
    alarmed = np.zeros(windows, dtype=bool)
    for column in reference.columns:
        if column.name not in thresholds.values:  # a clock column: never alarms
            continue
        p = np.asarray(column.shares) / sum(column.shares)
        counts = np.zeros((windows, column.n_bins))
        counts[:, : len(p)] = rng.multinomial(thresholds.rows, p, size=windows)
        for name in column.scores:
            alarmed |= score(column, name, counts) > thresholds.values[column.name][name]
    return float(alarmed.mean())


class HeldOut:
    """A held-out year in time order: its served features and the model that scores them."""

    def __init__(self, model: Path, rows: int = HELDOUT_ROWS, seed: int = HELDOUT_SEED) -> None:
        self.features: Features = served_matrix(sample_scans(np.random.default_rng(seed), rows))
        self.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])

    def columns(self, features: Features | None = None) -> dict[str, npt.NDArray[np.float64]]:
        """Every column of `features` (default: the year's): features, then the outputs."""
        x = self.features if features is None else features
        names = [o.name for o in self.session.get_outputs()]
        outputs = self.session.run(names, {self.session.get_inputs()[0].name: x})
        columns = {name: x[:, i].astype(np.float64) for i, name in enumerate(FEATURE_NAMES)}
        columns.update(
            {name: np.asarray(v, dtype=np.float64) for name, v in zip(names, outputs, strict=True)}
        )
        return columns


def heldout_history(
    model: Path, rows: int = HELDOUT_ROWS, seed: int = HELDOUT_SEED
) -> dict[str, npt.NDArray[np.float64]]:
    """Every column of a held-out year in time order: served features, then the outputs."""
    return HeldOut(model, rows, seed).columns()


def detection_rate(
    reference: Reference,
    thresholds: Thresholds,
    year: HeldOut,
    shift: Shift,
    windows: int,
    seed: int,
) -> tuple[float, dict[str, int]]:
    """(share of shifted windows that alarm anywhere, alarms per column): windows of
    consecutive held-out scans, `shift` applied to their features, through the model."""
    rows = thresholds.rows
    rng = np.random.default_rng(seed)
    n = year.features.shape[0]
    caught = 0
    per_column: dict[str, int] = {}
    for start in rng.integers(0, n - rows + 1, windows):
        window = year.features[start : start + rows].copy()
        shift(rng, window)
        columns = year.columns(window)
        hit = False
        for column in reference.columns:
            limits = thresholds.values.get(column.name)
            if limits is None:
                continue
            counts = np.bincount(
                bin_values(column, columns[column.name]), minlength=column.n_bins
            ).astype(np.float64)
            if any(float(score(column, s, counts)) > limits[s] for s in column.scores):
                per_column[column.name] = per_column.get(column.name, 0) + 1
                hit = True
        caught += hit
    return caught / windows, per_column


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
    parser.add_argument(
        "--shifted",
        type=int,
        default=200,
        help="shifted windows per shift (a quarter per VIX level)",
    )
    parser.add_argument(
        "--history-seed",
        type=int,
        default=HELDOUT_SEED,
        help="the held-out year's seed (another one than the default gives a validation year)",
    )
    args = parser.parse_args(argv)
    version = (args.artifacts / "current").read_text().strip()
    path = args.artifacts / MODELS_DIR / version / MANIFEST_FILE
    reference = Reference.of(msgspec.json.decode(path.read_bytes(), type=Manifest))
    year = HeldOut(path.parent / "model.onnx", seed=args.history_seed)
    history = year.columns()
    shifted = max(1, args.shifted)
    console = Console()
    console.print(f"thresholds: {reference.calibration_note}")
    table = Table(
        title=f"drift thresholds of {version} ({reference.tests} tests that can alarm, "
        f"{len(reference.columns)} columns)"
    )
    columns = ("rows per window", "false alarms", "time-ordered false alarms", *SHIFTS)
    for column in (*columns, "VIX one window shows"):
        table.add_column(column, justify="right")
    ok = True
    notes = []
    for rows in SIZES:
        thresholds = calibrate(reference, rows)
        far = measure(reference, thresholds, args.windows, args.seed)
        ordered, per_column = time_ordered_rate(
            reference, thresholds, history, rows, args.windows, args.seed
        )
        detected = {}
        for label, shift in SHIFTS.items():
            rate, by_column = detection_rate(reference, thresholds, year, shift, shifted, args.seed)
            detected[label] = rate
            top = sorted(by_column.items(), key=lambda kv: -kv[1])[:4]
            notes.append(f"{rows:,} rows, {label}: alarms by column {dict(top)}")
        # The smallest one-window VIX level caught in 99% of first windows.
        levels = {}
        for level in VIX_LEVELS:
            levels[level], _ = detection_rate(
                reference, thresholds, year, vix_shift(level), max(1, shifted // 4), args.seed
            )
        shown = next((v for v in VIX_LEVELS if levels[v] >= 1 - FALSE_ALARM_RATE), None)
        notes.append(
            f"{rows:,} rows, one window at a VIX of "
            + ", ".join(f"{v:g}: {r * 100:.1f}%" for v, r in levels.items())
        )
        ok &= max(far, ordered) <= FALSE_ALARM_RATE
        ok &= detected["universe mix -> us_all"] >= 1 - FALSE_ALARM_RATE
        table.add_row(
            f"{rows:,}",
            f"{far * 100:.2f}% of {args.windows:,}",
            f"{ordered * 100:.2f}% of {args.windows:,}",
            *(f"{d * 100:.1f}% of {shifted:,}" for d in detected.values()),
            "none" if shown is None else f"{shown:g} ({levels[shown] * 100:.1f}%)",
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
