"""`python -m bench.loop` (`just loop`): shift the world, see the alerts, retrain, recover.

    just loop                                   slow_provider, the committed default, 600 users
    just loop --shift volatility --users 300 --quick --recent-weight 4

The model lifecycle end to end, over HTTP, with the service's own monitoring:

1. **Before.** A private server (bench.simulation.server: Granian, 2 workers, a fresh
   SQLite store) serves the champion (a copy of --artifacts, so the real alias never
   moves); simulated users scan in the shifted world (`just simulate --shift NAME`).
2. **Alerts.** The app's own alert evaluation (GET /v1/dashboard/live, the conditions of
   deploy/prometheus/alerts.yml evaluated by server.monitoring.alerts) is polled until
   the alert the shift should raise holds: ScanoptAccuracyDegraded or
   ScanoptCoverageOutOfBand for the champion, or ScanoptFeatureDrift on a drifting
   column. The champion's online MAE per target is read from GET /v1/monitoring/accuracy.
3. **Retrain.** `just retrain`'s code reads that server's store (the outcomes the users
   just produced), trains a challenger on them with the base history, compares both on
   holdout users' scans of the latest day (later than every outcome it trained on) and
   promotes by the printed rule.
4. **After.** A second private server serves what `current` names now and new simulated
   users (another seed: other people, other days' volatility) scan in the same shifted
   world. Its online figures are printed, and the labelled outcomes of this phase are
   scored through both the champion's and the serving version's graph: the same rows for
   both, since two phases' traffic differs too much for their MAEs to be compared.

Exit 0 when the alerts the shift should raise held (accuracy or coverage of the champion
for a shift that degrades a target, drift on each column a shift moves), the challenger
was promoted and, on the traffic after, the shift's target MAE of the serving version is
below the champion's on the same rows; 1 otherwise (2: the run failed).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec
import numpy as np
from rich.console import Console

from bench.simulation.runner import SimConfig, run_simulation
from bench.simulation.server import own_server
from bench.simulation.shifts import SHIFTS, Shift
from export.artifacts import version_dir
from export.parity import open_session, run_graph
from server.domain.artifact import MODEL_FILE
from server.domain.features import encode_scans
from train.outcomes import outcome_records, read_outcomes
from train.retrain import RetrainError, RetrainResult, retrain

__all__ = [
    "LoopConfig",
    "LoopResult",
    "Phase",
    "expected_signals",
    "main",
    "paired_mae",
    "passed",
    "print_result",
    "run_loop",
    "target_of",
]

TARGETS: Final = ("result_count", "duration_s")
_ACCURACY_ALERTS: Final = ("ScanoptAccuracyDegraded", "ScanoptCoverageOutOfBand")


class LoopConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How big a loop to run."""

    shift: str = "slow_provider"
    users: int = 600  # simulated users per phase
    days: int = 3
    pre_days: int = 2
    threads: int = 12
    seed: int = 7  # the phase after uses seed + 1: other users in the same world
    quick: bool = False  # tiny challenger models (tests)
    # `just retrain --recent-weight`. 1,000 keeps ~1 base record in 1,000: the challenger
    # learns the shifted world from its outcomes alone. With base history beside them it
    # tells the two apart by the outcome days' own features (their volatility, their
    # hours) and learns the shift for those days only (README, "The loop").
    recent_weight: float = 1000.0
    alert_wait_s: float = 60.0


class Phase(msgspec.Struct, frozen=True, kw_only=True):
    """One phase's traffic as the service's monitoring saw it."""

    version: str
    users: int
    requests: int
    labelled: int
    mae: dict[str, float]
    coverage: dict[str, float]
    alerts: list[str]  # "name{label=value,...}" of every alert holding at the end
    seconds: float


class LoopResult(msgspec.Struct, frozen=True, kw_only=True):
    """Both phases, what the retrain did, and the paired figures on the traffic after."""

    before: Phase
    after: Phase
    retrain: RetrainResult
    shift: str
    fired: list[str]  # the alerts the shift should raise that held before
    # MAE per target of the champion and of the version serving after, both scored on
    # the labelled outcomes of the phase after (the same rows), and how many rows.
    paired_champion: dict[str, float]
    paired_served: dict[str, float]
    paired_rows: int


def _alerts(url: str) -> list[dict[str, Any]]:
    body: dict[str, Any] = httpx.get(f"{url}/v1/dashboard/live", timeout=10.0).json()
    return list(body.get("alerts", []))


def _shown(alert: dict[str, Any]) -> str:
    labels = ",".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()))
    return f"{alert['name']}{{{labels}}}"


def _expected(alert: dict[str, Any], shift: Shift, version: str) -> str | None:
    """Which signal of the shift an alert is: "accuracy" (accuracy or coverage of the
    serving version), "drift <column>" for a drifting column of the shift, else None."""
    labels = alert["labels"]
    if alert["name"] in _ACCURACY_ALERTS and labels.get("version") == version:
        return "accuracy"
    if alert["name"] == "ScanoptFeatureDrift" and labels.get("feature") in shift.drifting:
        return f"drift {labels['feature']}"
    return None


def expected_signals(shift: Shift) -> set[str]:
    """What the shift should raise: accuracy alerts when it degrades a target, and drift
    on each of its drifting columns."""
    signals = {f"drift {column}" for column in shift.drifting}
    return (signals | {"accuracy"}) if shift.degraded else signals


def _accuracy(url: str, version: str) -> tuple[int, dict[str, float], dict[str, float]]:
    body = httpx.get(f"{url}/v1/monitoring/accuracy", params={"window": "1h"}, timeout=10.0)
    groups = [g for g in body.json()["groups"] if g["arm"] == "all" and g["version"] == version]
    if not groups:
        return 0, {}, {}
    g = groups[-1]
    mae = {t: g[t]["mae"] for t in TARGETS if g[t].get("mae") is not None}
    coverage = {t: g[t]["coverage"] for t in TARGETS if g[t].get("coverage") is not None}
    return int(g["labelled"]), mae, coverage


def _simulate(url: str, config: LoopConfig, seed: int) -> tuple[int, int]:
    sim = SimConfig(
        users=config.users,
        days=config.days,
        pre_days=config.pre_days,
        seed=seed,
        threads=config.threads,
        shift=config.shift,
    )
    result = run_simulation(url, sim, today=datetime.now(UTC).date())
    if result.failures:
        raise RuntimeError(f"{len(result.failures)} simulated users failed: {result.failures[0]}")
    return len(result.users), result.requests


def _watch(
    url: str, version: str, shift: Shift, wait_s: float, want_alert: bool
) -> tuple[list[str], list[str], int, dict[str, float], dict[str, float]]:
    """Poll until every alert the shift should raise holds (want_alert) and the accuracy
    figures are in."""
    deadline = time.monotonic() + wait_s
    wanted = expected_signals(shift)
    while True:
        alerts = _alerts(url)
        fired = [_shown(a) for a in alerts if _expected(a, shift, version)]
        seen = {_expected(a, shift, version) for a in alerts}
        labelled, mae, coverage = _accuracy(url, version)
        done = len(mae) == len(TARGETS) and (not want_alert or wanted <= seen)
        if done or time.monotonic() > deadline:
            return [_shown(a) for a in alerts], fired, labelled, mae, coverage
        time.sleep(1.0)


def _served(artifacts: Path) -> str:
    return (artifacts / "current").read_text().strip()


def paired_mae(
    store: str, artifacts: Path, versions: Sequence[str]
) -> tuple[int, list[dict[str, float]]]:
    """Each version's MAE per target on the store's labelled outcomes (the same rows for
    all, through each version's graph as it serves)."""
    records = outcome_records(read_outcomes(store))
    features = encode_scans(records)
    truth = {
        "result_count": np.array([r.result_count for r in records], dtype=np.float64),
        "duration_s": np.array([r.duration_s for r in records], dtype=np.float64),
    }
    maes = []
    for version in versions:
        folder = version_dir(artifacts, version)
        out = run_graph(open_session(folder / MODEL_FILE), features)
        maes.append({t: float(np.mean(np.abs(out[t] - truth[t]))) for t in TARGETS})
    return len(records), maes


def run_loop(
    config: LoopConfig,
    artifacts: Path,
    history: Path,
    work: Path,
    console: Console,
) -> LoopResult:
    """The four steps of the module docstring; RetrainError when retraining refuses its
    input, RuntimeError when a simulated user fails."""
    shift = SHIFTS[config.shift]
    private = work / "artifacts"
    shutil.copytree(artifacts, private, ignore=shutil.ignore_patterns(".*"))
    champion = _served(private)
    started = time.perf_counter()
    with own_server(private, work / "log-before") as own:
        console.print(f"before: {champion} on {own.url}, shift {shift.name}: {shift.description}")
        users, requests = _simulate(own.url, config, config.seed)
        alerts, fired, labelled, mae, coverage = _watch(
            own.url, champion, shift, config.alert_wait_s, want_alert=True
        )
        before = Phase(
            version=champion,
            users=users,
            requests=requests,
            labelled=labelled,
            mae=mae,
            coverage=coverage,
            alerts=alerts,
            seconds=time.perf_counter() - started,
        )
        console.print(f"alerts holding: {', '.join(alerts) or 'none'}")
        with console.status("retraining on the store's outcomes (`just retrain`'s code)"):
            done = retrain(
                own.store_dsn,
                history,
                private,
                work / "retrain",
                recent_weight=config.recent_weight,
                quick=config.quick,
            )
    console.print(f"retrain: {done.comparison.reasons[-1]}", highlight=False)
    started = time.perf_counter()
    serving = _served(private)
    with own_server(private, work / "log-after") as own:
        users, requests = _simulate(own.url, config, config.seed + 1)
        alerts, _, labelled, mae, coverage = _watch(
            own.url, serving, shift, config.alert_wait_s, want_alert=False
        )
        rows, (paired_champion, paired_served) = paired_mae(
            own.store_dsn, private, [champion, serving]
        )
        after = Phase(
            version=serving,
            users=users,
            requests=requests,
            labelled=labelled,
            mae=mae,
            coverage=coverage,
            alerts=alerts,
            seconds=time.perf_counter() - started,
        )
    return LoopResult(
        before=before,
        after=after,
        retrain=done,
        shift=shift.name,
        fired=fired,
        paired_champion=paired_champion,
        paired_served=paired_served,
        paired_rows=rows,
    )


def target_of(shift: str) -> str:
    """The target a shift hurts: the one it degrades, else result_count (a feature
    drifted, and the count answers to every feature)."""
    return SHIFTS[shift].degraded or "result_count"


def passed(result: LoopResult) -> bool:
    """The alerts fired, the challenger was promoted, and on the traffic after, the
    shift's target MAE of the version serving is below the champion's on the same rows."""
    target = target_of(result.shift)
    return (
        bool(result.fired)
        and result.retrain.promoted
        and result.paired_served[target] < result.paired_champion[target]
    )


def print_result(result: LoopResult, console: Console) -> None:
    for name, phase in (("before", result.before), ("after", result.after)):
        figures = ", ".join(
            f"{t} MAE {phase.mae.get(t, float('nan')):.3g} coverage "
            f"{phase.coverage.get(t, float('nan')):.3f}"
            for t in TARGETS
        )
        console.print(
            f"{name}: {phase.version}, {phase.users} users, {phase.requests} requests, "
            f"{phase.labelled} labelled in 1h: {figures}; {phase.seconds:.0f} s",
            highlight=False,
        )
        console.print(f"  alerts: {', '.join(phase.alerts) or 'none'}", highlight=False)
    console.print(
        f"on the {result.paired_rows} labelled outcomes after (the same rows for both):",
        highlight=False,
    )
    for target in TARGETS:
        b, a = result.paired_champion[target], result.paired_served[target]
        console.print(
            f"  {target} MAE champion {b:.3g} -> serving {a:.3g} ({a / b:.2f}x)",
            highlight=False,
        )


def main(argv: Sequence[str] | None = None) -> int:
    defaults = LoopConfig()
    parser = argparse.ArgumentParser(prog="just loop", description=__doc__.split("\n")[0])
    parser.add_argument("--shift", choices=sorted(set(SHIFTS) - {"none"}), default=defaults.shift)
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--quick", action="store_true", help="tiny challenger models")
    parser.add_argument("--recent-weight", type=float, default=defaults.recent_weight)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--history", type=Path, default=Path("data/scan_history.jsonl"))
    args = parser.parse_args(argv)
    config = LoopConfig(
        shift=args.shift,
        users=args.users,
        days=args.days,
        seed=args.seed,
        quick=args.quick,
        recent_weight=args.recent_weight,
    )
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="scanopt-loop-"))
    try:
        result = run_loop(config, args.artifacts, args.history, work, console)
    except RetrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the run itself failed: say why, distinctly from a miss
        console.print(f"loop failed: {exc!r}", style="bold red")
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_result(result, console)
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
