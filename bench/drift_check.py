"""`python -m bench.drift_check` (`just drift-check`): the drift thresholds' measured rates.

For the model at artifacts/current and each window size, thresholds are calibrated as the
server calibrates them (server.monitoring.drift.calibrate), then:

- false alarms: `--windows` windows drawn from the reference histograms themselves (each
  column's counts multinomial from its shares, columns independent: the worst case for a
  Bonferroni bound) and the share of windows in which any of the 38 columns alarms;
- detection: windows from the reference with one stated shift applied, and the share of
  first windows that alarm on the shifted column(s): the volatility regime (VIX drawn
  around 40, sd 6, instead of the reference's ~18) and the universe mix moving to us_all.

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
from rich.console import Console
from rich.table import Table

from server.domain.artifact import MANIFEST_FILE, MODELS_DIR, Manifest
from server.domain.scan import UNIVERSE_SIZES, Universe
from server.monitoring.drift import FALSE_ALARM_RATE, Reference, bin_values, calibrate, score

__all__ = ["main", "measure"]

SIZES: Final = (256, 1024, 8192)
Shifted = Callable[[np.random.Generator, int], dict[str, np.ndarray]]
SHIFTS: Final[dict[str, Shifted]] = {
    "volatility ~18 -> ~40": lambda rng, n: {
        "volatility_index": rng.normal(40.0, 6.0, n).clip(5, 90)
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
        p = np.asarray(column.shares) / sum(column.shares)
        counts = rng.multinomial(rows, p, size=windows).astype(np.float64)
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
                counts = np.bincount(bin_values(col, v), minlength=len(col.shares)).astype(float)
                limits = thresholds.values[name]
                hit &= any(float(score(col, s, counts)) > limits[s] for s in col.scores)
            caught += hit
        detected[label] = caught / (windows // 10)
    return float(alarmed.mean()), detected


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
    console = Console()
    table = Table(title=f"drift thresholds of {version} ({reference.tests} tests, 38 columns)")
    for column in ("rows per window", "false alarms", *SHIFTS):
        table.add_column(column, justify="right")
    ok = True
    for rows in SIZES:
        far, detected = measure(reference, rows, args.windows, args.seed)
        ok &= far <= FALSE_ALARM_RATE and all(d >= 1 - FALSE_ALARM_RATE for d in detected.values())
        table.add_row(
            f"{rows:,}",
            f"{far * 100:.2f}% of {args.windows:,}",
            *(f"{d * 100:.1f}% of {args.windows // 10:,}" for d in detected.values()),
        )
    console.print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
