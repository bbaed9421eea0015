"""A/A validation of the experiment statistics: `python -m bench.aa` (`just aa`).

With no true effect, a sound test is significant at alpha = 0.05 in about 5% of
re-randomizations and its p-values are uniform. One simulated population
(bench/aa_population.py) is analysed under many random re-assignments of its users
(permuted arm labels): per metric the false-positive rate at the final look must lie in
the band (3.6-6.4% for 1,000 runs, +-2 binomial standard errors) and a KS test must not
reject uniform p-values. Over the daily looks, the always-valid p-value must cross alpha
in at most alpha of the runs, while the fixed-horizon p read every day (peeking) shows
the inflation it prevents. Finally a 52/48 split of 10,000 users must trip the SRM flag
and honest 50/50 draws must almost never do so.

Sums per arm for all runs are one matrix product (labels @ per-user moment columns); the
statistics are the report's own (server.analysis.comparison.compare_arms).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import stats as sps

from bench.aa_checks import AaResult, AaSettings, Check, MetricOutcome, SrmOutcome, evaluate
from bench.aa_plot import plot_aa
from bench.aa_population import PopulationSpec, columns_at, exposed_at, simulate_population
from server.analysis.catalogue import METRICS, MetricDef, metric_inputs
from server.analysis.comparison import choose_test, compare_arms
from server.analysis.moments import (
    MOMENT_FIELDS,
    ArmMoments,
    BoolArray,
    FloatArray,
    moment_columns,
)
from server.analysis.srm import srm_test
from server.analysis.user_metrics import UserColumns

__all__ = ["main", "run_aa"]


def _metric_tables(
    metric: MetricDef, pop_columns: Sequence[UserColumns], exposed: Sequence[BoolArray]
) -> tuple[FloatArray, bool]:
    """Per-user moment columns at every look, flattened to users x (looks x 10)."""
    tables, has_x = [], False
    for cols, seen in zip(pop_columns, exposed, strict=True):
        inputs = metric_inputs(metric, cols)
        has_x = inputs.x is not None
        valid = inputs.valid & seen
        tables.append(moment_columns(inputs.m, inputs.d, inputs.x, valid=valid))
    stacked = np.stack(tables, axis=1)  # users x looks x 10
    return stacked.reshape(stacked.shape[0], -1), has_x


def run_aa(settings: AaSettings, *, console: Console | None = None) -> AaResult:
    """Run the whole validation and return what it measured (no pass/fail yet)."""
    started = time.perf_counter()
    rng = np.random.default_rng(settings.seed)
    pop = simulate_population(
        PopulationSpec(n_users=settings.n_users, n_days=settings.n_looks, seed=settings.seed)
    )
    looks = range(settings.n_looks)
    pop_columns = [columns_at(pop, k) for k in looks]
    exposed = [exposed_at(pop, k) for k in looks]
    base = (rng.random(settings.n_users) < 0.5).astype(np.float64)
    metrics = [m for m in METRICS if settings.metrics is None or m.key in settings.metrics]
    tables = {m.key: _metric_tables(m, pop_columns, exposed) for m in metrics}
    shape = (settings.n_looks, len(MOMENT_FIELDS))
    runs = settings.rerandomizations
    p_fixed = {m.key: np.empty((runs, settings.n_looks)) for m in metrics}
    p_seq = {m.key: np.empty((runs, settings.n_looks)) for m in metrics}
    reduction = {m.key: np.full(runs, np.nan) for m in metrics}
    for start in range(0, runs, settings.chunk):
        stop = min(start + settings.chunk, runs)
        labels = rng.permuted(np.tile(base, (stop - start, 1)), axis=1)
        for m in metrics:
            table, has_x = tables[m.key]
            treated = (labels @ table).reshape(stop - start, *shape)
            total = table.sum(axis=0).reshape(shape)
            control = ArmMoments.from_sums(total - treated)
            cmp = compare_arms(
                control,
                ArmMoments.from_sums(treated),
                m.kind,
                alpha=settings.alpha,
                n_star=settings.n_star,
                cuped=has_x,
            )
            p_fixed[m.key][start:stop] = cmp.difference.p_value
            p_seq[m.key][start:stop] = cmp.seq_p_value
            if cmp.cuped is not None:
                reduction[m.key][start:stop] = cmp.cuped.variance_reduction[:, -1]
        if console is not None:
            console.log(f"re-randomizations {stop:,}/{runs:,}")

    outcomes = [
        _outcome(m, p_fixed[m.key], p_seq[m.key], reduction[m.key], tables[m.key][1], settings)
        for m in metrics
    ]
    n = settings.srm_users
    skewed_control = round(n * settings.srm_skew)
    skewed = srm_test([skewed_control, n - skewed_control], [0.5, 0.5])
    fair = srm_test(_binomial_split(rng, n, 0.5, runs), [0.5, 0.5])
    biased = srm_test(_binomial_split(rng, n, settings.srm_skew, runs), [0.5, 0.5])
    srm = SrmOutcome(
        skewed_counts=[skewed_control, n - skewed_control],
        skewed_p_value=float(skewed.p_value),
        skewed_flagged=bool(skewed.p_value < settings.srm_threshold),
        false_alarm_rate=float(np.mean(fair.p_value < settings.srm_threshold)),
        power_at_skew=float(np.mean(biased.p_value < settings.srm_threshold)),
    )
    return AaResult(
        settings=settings,
        metrics=outcomes,
        srm=srm,
        seconds=time.perf_counter() - started,
    )


def _crossed_by_look(p: FloatArray, alpha: float) -> list[float]:
    """Share of runs whose p-value has been below alpha at any look so far."""
    crossed = np.minimum.accumulate(np.nan_to_num(p, nan=1.0), axis=1) < alpha
    return [float(v) for v in crossed.mean(axis=0)]


def _outcome(
    m: MetricDef,
    p_fixed: FloatArray,
    p_seq: FloatArray,
    reduction: FloatArray,
    cuped: bool,
    settings: AaSettings,
) -> MetricOutcome:
    final = p_fixed[:, -1]
    ks = sps.kstest(final, "uniform")
    peeking = _crossed_by_look(p_fixed, settings.alpha)
    sequential = _crossed_by_look(p_seq, settings.alpha)
    return MetricOutcome(
        metric=m.key,
        test=choose_test(m.kind, adjusted=cuped).value,
        cuped=cuped,
        main=m.key in settings.main_metrics,
        false_positive_rate=float(np.mean(final < settings.alpha)),
        ks_statistic=float(ks.statistic),
        ks_p_value=float(ks.pvalue),
        sequential_crossing_rate=sequential[-1],
        peeking_crossing_rate=peeking[-1],
        cuped_variance_reduction=float(np.nanmedian(reduction)) if cuped else None,
        p_value_histogram=[int(c) for c in np.histogram(final, bins=20, range=(0.0, 1.0))[0]],
        sequential_crossed_by_look=sequential,
        peeking_crossed_by_look=peeking,
    )


def _binomial_split(rng: np.random.Generator, n: int, share: float, runs: int) -> FloatArray:
    first = rng.binomial(n, share, runs).astype(np.float64)
    return np.stack([first, n - first], axis=1)


def _print(result: AaResult, checks: list[Check], console: Console) -> None:
    s = result.settings
    table = Table(
        title=(
            f"A/A: {s.rerandomizations:,} re-randomizations of {s.n_users:,} users, "
            f"{s.n_looks} daily looks, alpha {s.alpha:g}"
        )
    )
    for column in ("metric", "test", "FPR", "KS p", "always-valid crossed", "peeking crossed"):
        table.add_column(column, justify="left" if column in ("metric", "test") else "right")
    table.add_column("CUPED var -", justify="right")
    for o in result.metrics:
        reduction = (
            "-" if o.cuped_variance_reduction is None else f"{o.cuped_variance_reduction:.0%}"
        )
        table.add_row(
            o.metric + ("" if o.main else " (info)"),
            o.test + (" +CUPED" if o.cuped else ""),
            f"{o.false_positive_rate:.1%}",
            f"{o.ks_p_value:.3f}",
            f"{o.sequential_crossing_rate:.1%}",
            f"{o.peeking_crossing_rate:.1%}",
            reduction,
        )
    console.print(table)
    srm = result.srm
    console.print(
        f"SRM: {srm.skewed_counts[0]:,}/{srm.skewed_counts[1]:,} -> p = {srm.skewed_p_value:.2e} "
        f"({'flagged' if srm.skewed_flagged else 'NOT flagged'}); false alarms on fair 50/50 "
        f"draws {srm.false_alarm_rate:.2%}; flagged on random {s.srm_skew:.0%} draws "
        f"{srm.power_at_skew:.1%} (on {s.srm_users:,} users)"
    )
    checks_table = Table(title="checks")
    for column in ("check", "measured", "allowed", "result"):
        checks_table.add_column(column)
    for c in checks:
        checks_table.add_row(
            c.name, f"{c.value:.4g}", c.allowed, "[green]pass[/]" if c.passed else "[red]FAIL[/]"
        )
    console.print(checks_table)
    failed = sum(not c.passed for c in checks)
    verdict = "[green]all checks pass[/]" if not failed else f"[red]{failed} check(s) failed[/]"
    console.print(f"{verdict} in {result.seconds:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run, print, write JSON; exit 1 when any check is outside its band."""
    defaults = AaSettings()
    parser = argparse.ArgumentParser(prog="python -m bench.aa", description=__doc__.split("\n")[0])
    parser.add_argument("--rerandomizations", type=int, default=defaults.rerandomizations)
    parser.add_argument("--users", type=int, default=defaults.n_users)
    parser.add_argument("--looks", type=int, default=defaults.n_looks)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--out", type=Path, default=Path("var/aa/aa.json"), help="where the JSON result goes"
    )
    args = parser.parse_args(argv)
    settings = msgspec.structs.replace(
        defaults,
        rerandomizations=args.rerandomizations,
        n_users=args.users,
        n_looks=args.looks,
        seed=args.seed,
    )
    console = Console()
    if not console.is_terminal:  # CI logs: do not squeeze the tables into 80 columns
        console = Console(width=140)
    result = run_aa(settings, console=console)
    checks = evaluate(result)
    _print(result, checks, console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(
        msgspec.json.format(msgspec.json.encode({"result": result, "checks": checks}))
    )
    picture = plot_aa(result, args.out.with_suffix(".png"))
    console.print(f"wrote {args.out} and {picture}")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
