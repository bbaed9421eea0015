"""Parity with GrowthBook's stats engine: `python -m bench.gbstats_parity` (`just parity`).

Generates per-user data sets of every metric kind (random arm sizes of 30-900 users, random
effects; ratios with users whose denominator is 0), sends each through the report's own
path (server.analysis.comparison.compare_arms) and through gbstats 0.8.0's public API
(`TwoSidedTTest` and `SequentialTwoSidedTTest` on `SampleMeanStatistic`,
`ProportionStatistic`, `RatioStatistic`; `check_srm` for the sample ratio), and prints the
largest relative difference per kind and figure. Exits 1 when any exceeds 1e-6.

Differences are relative to max(|reference|, 1e-9): below that they are absolute. gbstats
computes p as 1 - cdf, whose rounding is ~1e-16 absolute (a p of 1e-13 comes out with a
relative error of 1e-3 there, while scipy's sf here is exact), and an interval end near
zero would likewise turn rounding into a large relative figure.

gbstats is installed by `just setup` without its dependencies (its numpy < 2 and
pandas < 2 pins are for a DataFrame runner this never imports).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec
import numpy as np
from rich.console import Console
from rich.table import Table

from server.analysis.comparison import compare_arms
from server.analysis.kinds import MetricKind
from server.analysis.moments import ArmMoments, FloatArray, moment_columns
from server.analysis.srm import srm_test

__all__ = ["TOLERANCE", "ParityRow", "main", "measure_parity", "random_arm"]

TOLERANCE: Final = 1e-6


class ParityRow(msgspec.Struct, frozen=True, kw_only=True):
    """The largest relative difference of one figure of one kind over all data sets."""

    kind: str
    figure: str
    max_rel_diff: float


def random_arm(kind: MetricKind, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """Per-user numerators and denominators of one arm of a random size."""
    n = int(rng.integers(30, 900))
    if kind is MetricKind.PROPORTION:
        return (rng.random(n) < rng.uniform(0.05, 0.6)).astype(np.float64), np.ones(n)
    if kind is MetricKind.MEAN:
        return rng.lognormal(rng.uniform(0.0, 2.0), 0.9, n), np.ones(n)
    d = rng.poisson(rng.uniform(0.5, 6.0), n).astype(np.float64)
    return d * rng.uniform(1.0, 5.0, n), d


def _gbstats(name: str) -> Any:
    try:
        return importlib.import_module(f"gbstats.{name}")
    except ImportError:
        raise SystemExit("gbstats is not installed: pip install --no-deps gbstats==0.8.0") from None


def _statistic(kind: MetricKind, m: FloatArray, d: FloatArray) -> Any:
    st = _gbstats("models.statistics")
    n = len(m)
    if kind is MetricKind.PROPORTION:
        return st.ProportionStatistic(n=n, sum=float(m.sum()))
    mean = st.SampleMeanStatistic(n=n, sum=float(m.sum()), sum_squares=float((m * m).sum()))
    if kind is MetricKind.MEAN:
        return mean
    return st.RatioStatistic(
        n=n,
        m_statistic=mean,
        d_statistic=st.SampleMeanStatistic(
            n=n, sum=float(d.sum()), sum_squares=float((d * d).sum())
        ),
        m_d_sum_of_products=float((m * d).sum()),
    )


def _rel(ours: float, ref: float) -> float:
    return abs(ours - ref) / max(abs(ref), 1e-9)


def _sums(m: FloatArray, d: FloatArray) -> ArmMoments:
    return ArmMoments.from_sums(moment_columns(m, d).sum(axis=0))


def measure_parity(data_sets: int = 200, seed: int = 1) -> list[ParityRow]:
    """Largest relative difference per kind and figure over `data_sets` random data sets."""
    tests = _gbstats("frequentist.tests")
    utils = _gbstats("utils")
    rng = np.random.default_rng(seed)
    worst: dict[tuple[str, str], float] = {}

    def record(kind: str, figure: str, ours: float, ref: float) -> None:
        worst[kind, figure] = max(worst.get((kind, figure), 0.0), _rel(ours, ref))

    for _ in range(data_sets):
        for kind in MetricKind:
            (mc, dc), (mt, dt) = random_arm(kind, rng), random_arm(kind, rng)
            cmp = compare_arms(_sums(mc, dc), _sums(mt, dt), kind, alpha=0.05, n_star=5000)
            a, b = _statistic(kind, mc, dc), _statistic(kind, mt, dt)
            fixed = tests.TwoSidedTTest(a, b, tests.FrequentistConfig(alpha=0.05))
            seq = tests.SequentialTwoSidedTTest(
                a, b, tests.SequentialConfig(alpha=0.05, sequential_tuning_parameter=5000)
            )
            with np.errstate(over="ignore"):  # gbstats' e-value overflows for huge lifts
                f, s = fixed.compute_result(), seq.compute_result()
            d = cmp.difference
            figures: list[tuple[str, object, float]] = [
                ("lift", d.rel_diff, f.expected),
                ("CI low", d.rel_low, f.ci[0]),
                ("CI high", d.rel_high, f.ci[1]),
                ("p", d.p_value, f.p_value),
                ("always-valid CI low", cmp.seq_rel_low, s.ci[0]),
                ("always-valid CI high", cmp.seq_rel_high, s.ci[1]),
                ("always-valid p", cmp.seq_p_value, s.p_value),
            ]
            for figure, ours, ref in figures:
                record(kind.value, figure, float(np.asarray(ours)), float(ref))
        arms = int(rng.integers(2, 5))
        weights = [float(w) for w in rng.uniform(0.05, 1.0, arms)]
        counts = rng.multinomial(int(rng.integers(50, 20_000)), rng.dirichlet(np.ones(arms) * 20))
        srm_ref = float(utils.check_srm([int(c) for c in counts], weights))
        record("srm", "p", float(srm_test(counts, weights).p_value), srm_ref)
    return [ParityRow(kind=k, figure=f, max_rel_diff=v) for (k, f), v in worst.items()]


def main(
    argv: Sequence[str] | None = None, *, measure: Callable[..., list[ParityRow]] = measure_parity
) -> int:
    """CLI: print the table; exit 1 when any figure differs by more than TOLERANCE."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.gbstats_parity", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data-sets", type=int, default=200, help="random data sets per kind")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rows = measure(args.data_sets, args.seed)
    title = f"largest relative difference against gbstats 0.8.0, {args.data_sets} data sets a kind"
    table = Table(title=title)
    for column in ("kind", "figure", "max relative difference"):
        table.add_column(column)
    for row in rows:
        colour = "green" if row.max_rel_diff <= TOLERANCE else "red"
        table.add_row(row.kind, row.figure, f"[{colour}]{row.max_rel_diff:.2e}[/]")
    Console(width=120).print(table)
    return 0 if all(r.max_rel_diff <= TOLERANCE for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
