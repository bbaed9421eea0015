"""`just validate`: is the version in service ready? Reads files only, exits non-zero if not.

    python -m export.validate [--artifacts artifacts] [--version V] [--no-targets]

Checks the manifest (parses, schema, feature spec equal to the code's, input/outputs), the
sha256 of every file, that the ONNX graph loads in onnxruntime with the contract's input
and outputs, parity against the fixture saved at export, output ranges, and (unless
--no-targets) the metric targets recorded in the manifest and the same bars measured
now on a fresh population of unseen users (export.fresh). Then predicts a few sensible
scans and prints a readiness verdict. A missing pointer, folder or manifest is one line on
stderr; any failed check ends with a one-line error naming it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import msgspec
import numpy as np
from rich.console import Console
from rich.table import Table

from export.checks import ValidationRun, validate_version
from export.fresh import with_fresh_checks
from export.parity import GraphError, open_session, run_graph
from server.domain.artifact import MANIFEST_FILE, confidence_score
from server.domain.features import encode_scans
from server.domain.scan import Scan, Strategy, Timeframe, Universe

__all__ = ["SAMPLE_SCANS", "main", "predictions_table"]

# A Tuesday 10:15 in New York (market open), and a Saturday (closed).
_OPEN = datetime(2026, 11, 24, 15, 15, tzinfo=UTC)
_WEEKEND = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def _scan(universe: Universe, strategy: Strategy, timeframe: Timeframe, **kw: object) -> Scan:
    fields: dict[str, object] = {
        "universe": universe,
        "strategy": strategy,
        "timeframe": timeframe,
        "user_id": "validate",
        "session_id": "validate",
        "lookback_bars": 50,
        "min_price": 5.0,
        "max_price": 500.0,
        "min_avg_volume": 500_000.0,
        "min_market_cap_musd": 0.0,
        "min_abs_change_pct": 2.0,
        "min_relative_volume": 1.5,
        "rsi_min": 30.0,
        "rsi_max": 80.0,
        "n_extra_filters": 0,
        "volatility_index": 18.0,
        "timestamp": _OPEN,
    }
    fields.update(kw)
    return msgspec.convert(fields, Scan)  # validated like a request


SAMPLE_SCANS: tuple[tuple[str, Scan], ...] = (
    ("sp500 momentum 5m", _scan(Universe.SP500, Strategy.MOMENTUM, Timeframe.M5)),
    (
        "us_all breakout 1m, 200 bars",
        _scan(Universe.US_ALL, Strategy.BREAKOUT, Timeframe.M1, lookback_bars=200, min_price=1.0),
    ),
    (
        "nasdaq100 gap 1d, strict",
        _scan(
            Universe.NASDAQ100,
            Strategy.GAP,
            Timeframe.D1,
            min_abs_change_pct=8.0,
            min_relative_volume=4.0,
            n_extra_filters=3,
        ),
    ),
    (
        "crypto volume spike 1h, weekend",
        _scan(
            Universe.CRYPTO_TOP200,
            Strategy.VOLUME_SPIKE,
            Timeframe.H1,
            min_price=0.0,
            max_price=100_000.0,
            timestamp=_WEEKEND,
        ),
    ),
    (
        "russell2000 mean reversion 15m, VIX 35",
        _scan(
            Universe.RUSSELL2000,
            Strategy.MEAN_REVERSION,
            Timeframe.M15,
            rsi_min=0.0,
            rsi_max=35.0,
            volatility_index=35.0,
        ),
    ),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m export.validate", description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--version", default=None, help="a version folder name (default: current)")
    parser.add_argument(
        "--no-targets",
        action="store_true",
        help="check integrity only, not the metric targets (for tiny test models)",
    )
    return parser


def predictions_table(run: ValidationRun) -> Table:
    """Live predictions of SAMPLE_SCANS through the version's graph."""
    assert run.folder is not None
    assert run.manifest is not None
    session = open_session(run.folder / run.manifest.model_file)
    out = run_graph(session, encode_scans([scan for _, scan in SAMPLE_SCANS]))
    table = Table(title=f"Live predictions ({run.manifest.version})")
    for column in ("scan", "result_count [90%]", "duration_s [90%]", "p_empty", "confidence"):
        table.add_column(column, justify="left" if column == "scan" else "right")
    for i, (label, _) in enumerate(SAMPLE_SCANS):
        row = [float(out[k][i]) for k in ("result_count", "result_count_lo", "result_count_hi")]
        dur = [float(out[k][i]) for k in ("duration_s", "duration_s_lo", "duration_s_hi")]
        table.add_row(
            label,
            f"{row[0]:.1f} [{row[1]:.0f}-{row[2]:.0f}]",
            f"{dur[0]:.1f} [{dur[1]:.1f}-{dur[2]:.1f}]",
            f"{float(out['p_empty'][i]):.2f}",
            f"{confidence_score(*row, *dur):.2f}",
        )
    if not all(np.all(np.isfinite(v)) for v in out.values()):
        raise ValueError("a live prediction is not finite")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    run = validate_version(args.artifacts, args.version, targets=not args.no_targets)
    if not args.no_targets:
        run = with_fresh_checks(run)
    if run.folder is None:
        print(f"error: {run.checks[0].detail}", file=sys.stderr)
        return 1
    table = Table(title=f"Validation of {run.folder}")
    table.add_column("check")
    table.add_column("ok")
    table.add_column("detail", overflow="fold")
    for check in run.checks:
        table.add_row(check.name, "[green]yes[/]" if check.passed else "[red]NO[/]", check.detail)
    console.print(table)
    if run.ready:
        try:
            console.print(predictions_table(run))
        except (ValueError, GraphError) as exc:
            print(f"error: {run.folder}: live predictions failed: {exc}", file=sys.stderr)
            return 1
        console.print(f"[bold green]READY[/]: {run.folder.name} passes every check")
        return 0
    failed = [c for c in run.checks if not c.passed]
    console.print(f"[bold red]NOT READY[/]: {len(failed)} of {len(run.checks)} checks failed")
    print(
        f"error: {run.folder / MANIFEST_FILE}: {failed[0].name} failed: {failed[0].detail}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
