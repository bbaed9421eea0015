"""`python -m bench.simulate` (`just simulate`): the whole A/B test, end to end, over HTTP.

    just simulate                         2,000 users, 5 trading days (+5 of history), seed 7
    just simulate --users 500 --seed 3
    just simulate --shift volatility      a changed world (bench.simulation.shifts)
    SCANOPT_URL=http://127.0.0.1:8002 just simulate     against a running server

Starts a private server (bench.simulation.server: Granian, a free port, a fresh SQLite
store, the model at artifacts/current) unless SCANOPT_URL names one (give it a fresh store:
the report counts every user ever exposed). Simulated people then scan in sessions
(bench.simulation.scanner) through the Python client; outcomes come from the market's
ground truth. At the end the server's own report (GET /v1/experiments/ml_scanning/report)
is printed, written to var/reports/ml_scanning.{json,html,md}, and checked:

- the treatment's empty-scan rate is at least 30% below control's (relative),
- that reduction is detected at p < 0.01,
- no sample-ratio mismatch is flagged,
- and every simulated user and scan is in the report (nothing lost on the way).

With `--shift NAME` the world changes (a volatility regime, a slower data provider, the
universe mix moving to us_all) and one more check is required: the service's own
monitoring (GET /v1/monitoring/drift or /accuracy) catches it. The A/B effect checks are
then reported but not required: a changed world may well change the effect.

Exit status 0 when all hold, 1 otherwise (2: the run itself failed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from bench.experiment_report import (
    DEFAULT_OUT,
    RenderedReport,
    fetch_report,
    fetch_report_json,
    print_report,
    write_report,
)
from bench.simulation.cache import CacheCounts, cache_counts
from bench.simulation.runner import ArmTally, SimConfig, SimResult, run_simulation, tally
from bench.simulation.server import OwnServer, own_server
from bench.simulation.shifts import SHIFTS
from bench.simulation.watch import watch
from server.analysis.report import Report
from server.experiments.config import DEFAULT_EXPERIMENT

__all__ = ["Check", "SimulationOutcome", "checks", "main", "simulate"]

EMPTY_REDUCTION_TARGET: Final = -0.30
P_TARGET: Final = 0.01
_FLUSH_WAIT_S: Final = 20.0
DEFAULT_LOG_DIR: Final = Path("var/sim")  # the private server's log


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One exit criterion, with what was measured."""

    label: str
    measured: str
    passed: bool
    # An informational check is printed but does not decide the exit status.
    required: bool = True


class SimulationOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """A finished simulation: what it did, what the server reported, where it is written."""

    result: SimResult
    rendered: RenderedReport
    paths: list[Path]
    checks: list[Check]
    elapsed_s: float  # everything: server start, users, report
    phases_s: dict[str, float]  # server start (own server only), users, report
    cache: CacheCounts  # the server's prediction cache over the run

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks if c.required)


def checks(report: Report, arms: dict[str, ArmTally]) -> list[Check]:
    """The exit criteria on the server's report and on the simulation's own counts."""
    treatment = report.treatments[0] if report.treatments else None
    empty = (
        None
        if treatment is None
        else next((m for m in treatment.metrics if m.key == "empty_scan_rate"), None)
    )
    rel = None if empty is None else empty.rel_diff
    p = None if empty is None else empty.p_value
    reported = {a.name: (a.users, a.scans) for a in report.arms}
    simulated = {name: (t.users, t.scans) for name, t in arms.items() if name != "none"}
    return [
        Check(
            label="empty-scan rate >= 30% lower in treatment",
            measured="-" if rel is None else f"{rel * 100:+.1f}%",
            passed=rel is not None and rel <= EMPTY_REDUCTION_TARGET,
        ),
        Check(
            label="reduction detected at p < 0.01",
            measured="-" if p is None else f"p = {p:.2e}",
            passed=p is not None and p < P_TARGET and rel is not None and rel < 0,
        ),
        Check(
            label="no sample-ratio mismatch",
            measured=f"p = {report.srm.p_value:.3g}",
            passed=not report.srm.flagged,
        ),
        Check(
            label="every simulated user and scan reported",
            measured=f"report {reported}, simulation {simulated}",
            passed=reported == simulated,
        ),
    ]


def _wait_for_users(url: str, expected: int, console: Console) -> None:
    """Until the prediction log has flushed every exposure (or the wait runs out)."""
    deadline = time.monotonic() + _FLUSH_WAIT_S
    while time.monotonic() < deadline:
        users = sum(a.users for a in fetch_report_json(url, looks=False).arms)
        if users >= expected:
            return
        time.sleep(0.25)
    console.print(f"warning: the report still lacks users after {_FLUSH_WAIT_S:g} s")


def simulate(
    config: SimConfig,
    *,
    url: str | None,
    artifacts: Path,
    out_dir: Path,
    console: Console,
    log_dir: Path = DEFAULT_LOG_DIR,
) -> SimulationOutcome:
    """Run the simulation (starting a server unless `url`), fetch and write the report."""
    t0 = time.perf_counter()
    server: AbstractContextManager[OwnServer | None] = (
        nullcontext(None) if url else own_server(artifacts, log_dir)
    )
    phases: dict[str, float] = {}
    with server as own:
        base = url or (own.url if own else "")
        t_users = time.perf_counter()
        if own is not None:
            phases["server start"] = t_users - t0
            console.print(
                f"server ready on {own.url} in {own.startup_s:.1f} s (store {own.store_dsn})"
            )
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("simulated users", total=config.users)
            result = run_simulation(
                base,
                config,
                today=datetime.now(UTC).date(),
                on_user_done=lambda _: progress.advance(task),
            )
        arms = tally(result.users)
        cache = cache_counts(base)
        t_report = time.perf_counter()
        phases["users"] = t_report - t_users
        _wait_for_users(base, sum(t.users for n, t in arms.items() if n != "none"), console)
        rendered = fetch_report(base, DEFAULT_EXPERIMENT)
        phases["report"] = time.perf_counter() - t_report
        shift = SHIFTS[config.shift]
        signal = watch(base, shift)
    paths = write_report(rendered, out_dir)
    found = checks(rendered.report, arms)
    if shift.name != "none":
        # A changed world may change the effect: report it, require only the accounting.
        found = [
            msgspec.structs.replace(c, required=c.label.startswith("every simulated"))
            for c in found
        ]
    found.append(
        Check(
            label=signal.label,
            measured=signal.measured,
            passed=signal.caught,
            required=shift.name != "none",
        )
    )
    if result.failures:
        found.append(
            Check(
                label="no simulated user failed",
                measured=f"{len(result.failures)} failed, first: {result.failures[0]}",
                passed=False,
            )
        )
    return SimulationOutcome(
        result=result,
        rendered=rendered,
        paths=paths,
        checks=found,
        elapsed_s=time.perf_counter() - t0,
        phases_s=phases,
        cache=cache,
    )


def _print_outcome(outcome: SimulationOutcome, console: Console) -> None:
    table = Table(title="What the simulation itself counted", title_justify="left")
    for column in (
        "arm",
        "users",
        "sessions",
        "scans",
        "empty",
        "in range",
        "min/session",
        "applied",
        "returned",
    ):
        table.add_column(column, justify="right")
    for arm, t in tally(outcome.result.users).items():
        table.add_row(
            arm,
            f"{t.users:,}",
            f"{t.sessions:,}",
            f"{t.scans:,}",
            f"{t.empty_rate * 100:.1f}%",
            f"{t.scans_in_range / max(t.scans, 1) * 100:.1f}%",
            f"{t.session_time_s / max(t.sessions, 1) / 60:.2f}",
            f"{t.suggestions_applied:,}",
            f"{t.returned / max(t.users, 1) * 100:.1f}%",
        )
    console.print(table)
    print_report(outcome.rendered.report, console)
    for check in outcome.checks:
        mark = "[green]PASS[/]" if check.passed else "[bold red]FAIL[/]"
        if not check.required:
            mark = "[cyan]INFO[/]" if check.passed else "[yellow]INFO[/]"
        console.print(f"{mark} {check.label}: {check.measured}")
    users_s = outcome.phases_s.get("users", outcome.elapsed_s)
    phases = ", ".join(f"{name} {s:.1f} s" for name, s in outcome.phases_s.items())
    console.print(
        f"{len(outcome.result.users):,} users, {outcome.result.requests:,} requests "
        f"({outcome.result.requests / users_s:,.0f} req/s) in {outcome.elapsed_s:.1f} s "
        f"({phases})"
    )
    console.print(f"prediction cache: {outcome.cache}")
    for path in outcome.paths:
        console.print(f"wrote {path}")


def _parser() -> argparse.ArgumentParser:
    defaults = SimConfig()
    parser = argparse.ArgumentParser(prog="just simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--days", type=int, default=defaults.days, help="trading days")
    parser.add_argument("--pre-days", type=int, default=defaults.pre_days)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument(
        "--shift",
        choices=sorted(SHIFTS),
        default=defaults.shift,
        help="run in a changed world: "
        + "; ".join(f"{s.name}: {s.description}" for s in SHIFTS.values()),
    )
    parser.add_argument("--url", default=os.environ.get("SCANOPT_URL"), help="a running server")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print, write; 0 when every check passes."""
    args = _parser().parse_args(argv)
    config = SimConfig(
        users=args.users,
        days=args.days,
        pre_days=args.pre_days,
        seed=args.seed,
        threads=args.threads,
        shift=args.shift,
    )
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)  # a log file: the metric tables need the width
    try:
        outcome = simulate(
            config, url=args.url, artifacts=args.artifacts, out_dir=args.out, console=console
        )
    except Exception as exc:  # the run could not finish: say why, distinctly from a miss
        console.print(f"simulation failed: {exc!r}", style="bold red")
        return 2
    _print_outcome(outcome, console)
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main())
