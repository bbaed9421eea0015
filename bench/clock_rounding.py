"""`python -m bench.clock_rounding` (`just clock-rounding`): what serving the time of day to
the minute changes in the model's answers.

    just clock-rounding                  5,000 generated scans, seed 3, artifacts/current

The prediction cache hits because served rows floor `minutes_since_open` to the minute
(server.inference.clock); the models were trained on seconds. This runs the version in
service on the same generated scans encoded both ways and prints, per output, the share of
predictions that move at all, the mean absolute change, and the 99th percentile of the
relative change.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import msgspec
import numpy as np
from rich.console import Console
from rich.table import Table

from server.domain.features import encode_scans
from server.inference.clock import served_matrix
from server.inference.model import load_model
from train.generate import generate_records

__all__ = ["OutputShift", "main", "measure"]

_OUTPUTS: Final = (("result_count", 0), ("duration_s", 3), ("p_empty", 6))


class OutputShift(msgspec.Struct, frozen=True, kw_only=True):
    """How one model output moves when the clock is floored to the minute."""

    output: str
    share_changed: float
    mean_abs: float
    p99_rel: float


def measure(artifacts: Path, n: int, seed: int) -> tuple[str, list[OutputShift]]:
    """(version, shifts) of the version in service on `n` generated scans."""
    scans = [r.to_scan() for r in generate_records(n, seed=seed)]
    model = load_model(artifacts, intra_op_threads=1, cache_size=0)
    exact, served = model.run(encode_scans(scans)), model.run(served_matrix(scans))
    shifts = []
    for name, i in _OUTPUTS:
        diff = np.abs(exact[i].astype(np.float64) - served[i].astype(np.float64))
        rel = diff / np.maximum(np.abs(exact[i].astype(np.float64)), 1e-9)
        shifts.append(
            OutputShift(
                output=name,
                share_changed=float((diff > 0).mean()),
                mean_abs=float(diff.mean()),
                p99_rel=float(np.quantile(rel, 0.99)),
            )
        )
    return model.version, shifts


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(prog="just clock-rounding", description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    args = parser.parse_args(argv)
    version, shifts = measure(args.artifacts, args.scans, args.seed)
    table = Table(title=f"{version}: clock floored to the minute, {args.scans:,} scans")
    for column in ("output", "predictions changed", "mean |change|", "p99 relative change"):
        table.add_column(column, justify="right")
    for s in shifts:
        table.add_row(
            s.output,
            f"{s.share_changed * 100:.1f}%",
            f"{s.mean_abs:.4f}",
            f"{s.p99_rel * 100:.1f}%",
        )
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
