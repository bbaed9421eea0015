"""Simulated scan history: scans as people set them, run against the market model.

    python -m train.generate --n 120000 --seed 7 --out data/scan_history.jsonl

writes one ScanRecord per line (what a scanner logs, plus the noiseless expectations that
give the oracle error floor, see train.market) and a Parquet copy next to it, then prints
summary statistics of what it wrote. The parameters come from train.habits.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Final, NoReturn

import msgspec
import numpy as np
import numpy.typing as npt
import polars as pl
from rich.console import Console
from rich.table import Table

from server.domain.scan import Scan, ScanRecord, Strategy, Universe
from train import market
from train.habits import sample_scans

__all__ = [
    "DEFAULT_N",
    "DEFAULT_OUT",
    "DEFAULT_SEED",
    "GroupSummary",
    "HistorySummary",
    "generate_records",
    "main",
    "print_summary",
    "records_frame",
    "summarize",
    "write_history",
]

# 400 users' year of scans. Generation is cheap and more history is what most lifts the
# models on users they never saw (grouped CV, count MAE / oracle: 20,000 scans 1.131,
# 60,000 1.102, 120,000 1.081).
DEFAULT_N: Final = 120_000
DEFAULT_SEED: Final = 7
DEFAULT_OUT: Final = Path("data/scan_history.jsonl")
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
FRAME_SCHEMA: Final[dict[str, pl.DataType | type[pl.DataType]]] = {
    "user_id": pl.String,
    "session_id": pl.String,
    "universe": pl.String,
    "strategy": pl.String,
    "timeframe": pl.String,
    "lookback_bars": pl.Int64,
    "min_price": pl.Float64,
    "max_price": pl.Float64,
    "min_avg_volume": pl.Float64,
    "min_market_cap_musd": pl.Float64,
    "min_abs_change_pct": pl.Float64,
    "min_relative_volume": pl.Float64,
    "rsi_min": pl.Float64,
    "rsi_max": pl.Float64,
    "n_extra_filters": pl.Int64,
    "volatility_index": pl.Float64,
    "timestamp": pl.Datetime("us", "UTC"),
    "result_count": pl.Int64,
    "duration_s": pl.Float64,
    "expected_result_count": pl.Float64,
    "expected_duration_s": pl.Float64,
}


def generate_records(n: int, seed: int) -> list[ScanRecord]:
    """`n` scan-history records, the same for the same seed."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    scans = sample_scans(rng, n)
    arrays = market.scan_arrays(scans)
    mean = market.expected_counts(arrays)
    counts = market.draw_counts(mean, arrays.size, rng)
    uncapped = market.uncapped_durations(arrays)
    durations = market.draw_durations(uncapped, rng)
    expected_s = np.minimum(uncapped, market.TIMEOUT_S)
    return [
        ScanRecord(
            **{f: getattr(scan, f) for f in Scan.__struct_fields__},
            result_count=int(counts[i]),
            duration_s=round(float(durations[i]), 3),
            expected_result_count=float(mean[i]),
            expected_duration_s=float(expected_s[i]),
        )
        for i, scan in enumerate(scans)
    ]


def records_frame(records: Sequence[ScanRecord]) -> pl.DataFrame:
    """The records as a Polars frame, one column per ScanRecord field (enums as strings)."""
    rows = msgspec.to_builtins(list(records), builtin_types=(datetime,))
    return pl.DataFrame(rows, schema=FRAME_SCHEMA)


def write_history(records: Sequence[ScanRecord], jsonl_path: Path) -> tuple[Path, Path]:
    """Write the records as JSONL (one per line) and a Parquet copy beside it; both paths."""
    if jsonl_path.suffix == ".parquet":
        raise ValueError(f"history path {jsonl_path} must not end in .parquet; expected .jsonl")
    parquet_path = jsonl_path.with_suffix(".parquet")
    jsonl_path.parent.mkdir(parents=True, exist_ok=True)
    jsonl_path.write_bytes(msgspec.json.Encoder().encode_lines(list(records)))
    records_frame(records).write_parquet(parquet_path)
    return jsonl_path, parquet_path


class GroupSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Statistics of the records that share one value of a field."""

    name: str
    rows: int
    empty_share: float
    median_count: float
    median_duration_s: float


class HistorySummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a generated history looks like, and the oracle error floor of both targets."""

    rows: int
    empty_share: float
    median_nonempty_count: float
    duration_min_s: float
    duration_median_s: float
    duration_p95_s: float
    duration_max_s: float
    timeout_share: float
    oracle_mae_count: float | None  # None when no record carries its expectation
    oracle_mae_duration_s: float | None
    by_universe: list[GroupSummary]
    by_strategy: list[GroupSummary]


def _groups(
    keys: list[str], names: Sequence[str], count: Ints, duration: Floats
) -> list[GroupSummary]:
    column = np.asarray(keys)
    groups = []
    for name in names:
        mask = column == name
        if mask.any():
            groups.append(
                GroupSummary(
                    name=name,
                    rows=int(mask.sum()),
                    empty_share=float(np.mean(count[mask] == 0)),
                    median_count=float(np.median(count[mask])),
                    median_duration_s=float(np.median(duration[mask])),
                )
            )
    return groups


def _oracle_mae(expected: list[float | None], actual: Floats) -> float | None:
    """MAE of the noiseless expectation, over the records that carry one (None if none do)."""
    known = np.asarray([e is not None for e in expected])
    if not known.any():
        return None
    values = np.asarray([e for e in expected if e is not None], dtype=np.float64)
    return float(np.mean(np.abs(values - actual[known])))


def summarize(records: Sequence[ScanRecord]) -> HistorySummary:
    """Summary statistics of a non-empty history and the oracle floor of both targets."""
    if not records:
        raise ValueError("cannot summarize an empty history; expected at least one record")
    count = np.asarray([r.result_count for r in records], dtype=np.int64)
    duration = np.asarray([r.duration_s for r in records], dtype=np.float64)
    nonempty = count[count > 0]
    return HistorySummary(
        rows=len(records),
        empty_share=float(np.mean(count == 0)),
        median_nonempty_count=float(np.median(nonempty)) if nonempty.size else 0.0,
        duration_min_s=float(duration.min()),
        duration_median_s=float(np.median(duration)),
        duration_p95_s=float(np.quantile(duration, 0.95)),
        duration_max_s=float(duration.max()),
        timeout_share=float(np.mean(duration >= market.TIMEOUT_S)),
        oracle_mae_count=_oracle_mae(
            [r.expected_result_count for r in records], count.astype(np.float64)
        ),
        oracle_mae_duration_s=_oracle_mae([r.expected_duration_s for r in records], duration),
        by_universe=_groups(
            [r.universe.value for r in records], [u.value for u in Universe], count, duration
        ),
        by_strategy=_groups(
            [r.strategy.value for r in records], [s.value for s in Strategy], count, duration
        ),
    )


def _fmt(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:.3f}{unit}"


def print_summary(summary: HistorySummary, console: Console) -> None:
    """Rich tables: the overall figures, then the breakdown by universe and by strategy."""
    overall = Table(title=f"scan history: {summary.rows:,} rows", show_header=False)
    for label, value in (
        ("empty share", f"{summary.empty_share:.1%}"),
        ("median non-empty count", f"{summary.median_nonempty_count:g}"),
        (
            "duration min / median",
            f"{summary.duration_min_s:.2f} / {summary.duration_median_s:.2f} s",
        ),
        ("duration p95 / max", f"{summary.duration_p95_s:.2f} / {summary.duration_max_s:.2f} s"),
        ("timeouts", f"{summary.timeout_share:.1%}"),
        ("oracle MAE result_count", _fmt(summary.oracle_mae_count, "")),
        ("oracle MAE duration_s", _fmt(summary.oracle_mae_duration_s, " s")),
    ):
        overall.add_row(label, value)
    console.print(overall)
    for title, groups in (("universe", summary.by_universe), ("strategy", summary.by_strategy)):
        table = Table(title=f"by {title}")
        for column in (title, "rows", "empty", "median count", "median duration"):
            table.add_column(column, justify="left" if column == title else "right")
        for g in groups:
            table.add_row(
                g.name,
                f"{g.rows:,}",
                f"{g.empty_share:.1%}",
                f"{g.median_count:g}",
                f"{g.median_duration_s:.1f} s",
            )
        console.print(table)


class _Parser(argparse.ArgumentParser):
    """Bad arguments end in one line on stderr, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI: generate, write both files, print the summary; 0 on success, 2 on bad input."""
    parser = _Parser(prog="python -m train.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=_positive_int, default=DEFAULT_N, help="records to write")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSONL path")
    args = parser.parse_args(argv)
    console = Console()
    with console.status(f"generating {args.n:,} scans (seed {args.seed})"):
        records = generate_records(args.n, args.seed)
    try:
        jsonl_path, parquet_path = write_history(records, args.out)
    except (OSError, ValueError) as exc:
        print(f"{parser.prog}: error: cannot write {args.out}: {exc}", file=sys.stderr)
        return 2
    console.print(f"wrote {jsonl_path} and {parquet_path}")
    print_summary(summarize(records), console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
