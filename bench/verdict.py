"""What the figures mean: throughput ratios, plan and goal checks, the batcher's default.

Plan targets (the product plan's bars) fail a run: one scan inferred in under 50 ms at p99,
HTTP p95 under 200 ms at the open-loop rate, and no request may error. Goals are this
project's own, far tighter bars; they are reported, met or missed, and never fail the run
(the machine is shared and noisy, a CI guard must not flap on them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from bench.report import Check, HttpRun, InProcessFigure

__all__ = [
    "CAPACITY_TARGET_RPS",
    "CAPACITY_UTILISATION",
    "PLAN_HTTP_P95_MS",
    "PLAN_INFERENCE_MS",
    "batcher_recommendation",
    "build_checks",
    "capacity",
    "passed",
    "throughput_ratios",
]

PLAN_INFERENCE_MS: Final = 50.0
PLAN_HTTP_P95_MS: Final = 200.0
GOAL_ONE_SCAN_P99_US: Final = 100.0
GOAL_PREDICT_P95_MS: Final = 5.0
GOAL_RECOMMEND_P95_MS: Final = 20.0
GOAL_VS_BASELINE: Final = 25.0
GOAL_VS_CEILING: Final = 0.7
GOAL_RSS_MB: Final = 200.0
# /v1/predict req/s with monitoring on over the same server with it off.
GOAL_MONITORING_RATIO: Final = 0.97
# The monitoring work a request adds, in process: the kept row, and the kept row with its
# share of binning (the monitoring issue's goal).
GOAL_MONITORING_US: Final = 3.0
# Capacity math: the load to plan for, and how hot a replica may run. Latency stays near
# its idle value only well below saturation (queueing grows as 1 / (1 - utilisation)).
CAPACITY_TARGET_RPS: Final = 10_000.0
CAPACITY_UTILISATION: Final = 0.5
# The batcher must win clearly to be worth its moving parts; smaller gaps are noise here.
_BATCHER_MARGIN: Final = 0.05


def _rps(run: HttpRun | None) -> float | None:
    return run.closed.requests_per_s if run is not None and run.closed is not None else None


def _find(
    runs: Sequence[HttpRun], server: str, workers: int, path: str, batcher: bool | None = None
) -> HttpRun | None:
    for run in runs:
        if (
            run.server == server
            and run.workers == workers
            and run.path == path
            and (batcher is None or run.batcher == batcher)
            and not run.settings  # variants (other log level, ...) are not the comparison
            and run.failure is None
        ):
            return run
    return None


def throughput_ratios(
    runs: Sequence[HttpRun], default_batcher: bool, path: str = "/v1/predict"
) -> dict[str, float]:
    """scanopt's wrk req/s over the FastAPI baseline's and over the ceiling's, per worker count."""
    ratios: dict[str, float] = {}
    for workers in sorted({r.workers for r in runs if r.server == "scanopt"}):
        ours = _rps(_find(runs, "scanopt", workers, path, default_batcher))
        plural = "worker" if workers == 1 else "workers"
        for server in ("fastapi-sklearn", "ceiling"):
            theirs = _rps(_find(runs, server, workers, path))
            if ours is not None and theirs:
                ratios[f"scanopt / {server} ({workers} {plural})"] = ours / theirs
    return ratios


def _check(
    name: str, kind: str, target: str, value: float | None, unit: str, limit: float, above: bool
) -> Check:
    ok = None if value is None else (value >= limit if above else value < limit)
    return Check(
        name=name,
        kind="plan" if kind == "plan" else "goal",
        target=target,
        value=value,
        unit=unit,
        passed=ok,
    )


def build_checks(
    inprocess: Sequence[InProcessFigure], runs: Sequence[HttpRun], ratios: dict[str, float]
) -> list[Check]:
    """Every plan and goal check the figures allow; a missing figure is 'not measured'."""
    by_name = {f.name: f for f in inprocess}
    one = by_name.get("predict_one")
    one_ms = one.p99_us / 1000.0 if one else None
    checks = [
        _check(
            "one scan in-process p99", "plan", "< 50 ms", one_ms, "ms", PLAN_INFERENCE_MS, False
        ),
        _check(
            "one scan in-process p99",
            "goal",
            "< 100 µs",
            one.p99_us if one else None,
            "µs",
            GOAL_ONE_SCAN_P99_US,
            False,
        ),
    ]
    rec = by_name.get("recommend")
    checks.append(
        _check(
            "recommend in-process p99",
            "plan",
            "< 50 ms",
            rec.p99_us / 1000.0 if rec else None,
            "ms",
            PLAN_INFERENCE_MS,
            False,
        )
    )
    observe, drain = by_name.get("monitoring_observe"), by_name.get("monitoring_drain")
    for name, value in (
        (
            "monitoring work per request in process (a kept row), median",
            observe.median_us if observe else None,
        ),
        (
            "monitoring cost per request in process (kept row + its share of binning), median",
            drain.per_row_us if drain else None,
        ),
    ):
        checks.append(_check(name, "goal", "< 3 µs", value, "µs", GOAL_MONITORING_US, False))
    for run in runs:
        if run.server != "scanopt":
            continue
        p95 = run.open.latency.p95_ms if run.open is not None else None
        rate = f" at {run.open.target_rate:,.0f} req/s" if run.open is not None else ""
        name = f"{run.name} {run.path} open-loop p95{rate}"
        checks.append(_check(name, "plan", "< 200 ms", p95, "ms", PLAN_HTTP_P95_MS, False))
        goal = GOAL_RECOMMEND_P95_MS if run.path == "/v1/recommend" else GOAL_PREDICT_P95_MS
        checks.append(_check(name, "goal", f"< {goal:g} ms", p95, "ms", goal, False))
        if run.peak_rss_mb:
            checks.append(
                _check(
                    f"{run.name} peak RSS per worker",
                    "goal",
                    "< 200 MiB",
                    max(run.peak_rss_mb),
                    "MiB",
                    GOAL_RSS_MB,
                    False,
                )
            )
    for key, value in ratios.items():
        limit = GOAL_VS_BASELINE if "fastapi" in key else GOAL_VS_CEILING
        checks.append(_check(key, "goal", f">= {limit:g}x", value, "x", limit, True))
    cost = monitoring_ratio(runs)
    if cost is not None:
        checks.append(
            _check(
                "monitoring on / off /v1/predict wrk req/s (1 worker, interleaved)",
                "goal",
                f">= {GOAL_MONITORING_RATIO:g}x",
                cost,
                "x",
                GOAL_MONITORING_RATIO,
                True,
            )
        )
    return checks


def monitoring_ratio(runs: Sequence[HttpRun]) -> float | None:
    """Mean wrk req/s of the monitoring-on runs over the monitoring-off runs (the pair is
    interleaved on, off, on, off); None unless both sides were measured."""
    sides: dict[str, list[float]] = {"on": [], "off": []}
    for run in runs:
        state = run.settings.get("SCANOPT_MONITORING")
        rps = _rps(run) if run.failure is None else None
        if state in sides and rps is not None:
            sides[state].append(rps)
    if not sides["on"] or not sides["off"]:
        return None
    return (sum(sides["on"]) / len(sides["on"])) / (sum(sides["off"]) / len(sides["off"]))


def passed(checks: Sequence[Check], failures: Sequence[str]) -> bool:
    """No failed run, and every plan check measured and met."""
    return not failures and all(c.passed is True for c in checks if c.kind == "plan")


def batcher_recommendation(runs: Sequence[HttpRun], path: str = "/v1/predict") -> str:
    """On only if it beats off at every worker count measured: more req/s, no worse p99."""
    lines: list[str] = []
    wins: list[bool] = []
    for workers in sorted({r.workers for r in runs if r.server == "scanopt"}):
        on = _find(runs, "scanopt", workers, path, True)
        off = _find(runs, "scanopt", workers, path, False)
        if on is None or off is None or on.closed is None or off.closed is None:
            continue
        if on.open is None or off.open is None:
            continue
        gain = on.closed.requests_per_s / off.closed.requests_per_s - 1.0
        p99_on, p99_off = on.open.latency.p99_ms, off.open.latency.p99_ms
        wins.append(gain > _BATCHER_MARGIN and p99_on <= p99_off * (1.0 + _BATCHER_MARGIN))
        lines.append(
            f"{workers} worker(s): wrk {on.closed.requests_per_s:,.0f} req/s on vs "
            f"{off.closed.requests_per_s:,.0f} off ({gain:+.1%}); open-loop p99 "
            f"{p99_on:.2f} ms on vs {p99_off:.2f} ms off"
        )
    if not wins:
        return "not measured (needs scanopt runs with the batcher on and off)."
    verdict = "ON" if all(wins) else "OFF"
    return (
        f"recommend {verdict} by default ({'; '.join(lines)}; on must win by more than "
        f"{_BATCHER_MARGIN:.0%} req/s with no worse p99 at every worker count)."
    )


def capacity(runs: Sequence[HttpRun], nproc: int, default_batcher: bool) -> dict[str, float]:
    """Requests/s per core and replicas for CAPACITY_TARGET_RPS, from the widest default run.

    The replica is this machine (`nproc` cores) running scanopt with as many workers as
    were measured; wrk shared those cores, so per-core figures are lower bounds.
    """
    best: HttpRun | None = None
    for workers in sorted({r.workers for r in runs if r.server == "scanopt"}):
        found = _find(runs, "scanopt", workers, "/v1/predict", default_batcher)
        best = found if found is not None and found.closed is not None else best
    if best is None or best.closed is None:
        return {}
    rps = best.closed.requests_per_s
    out = {
        "workers": float(best.workers),
        "replica_max_rps": rps,
        "rps_per_core": rps / nproc,
        "replicas_for_target_at_utilisation": float(
            math.ceil(CAPACITY_TARGET_RPS / (rps * CAPACITY_UTILISATION))
        ),
    }
    if best.open is not None and best.open.latency.p95_ms < GOAL_PREDICT_P95_MS:
        # The open-loop rate this replica was seen to hold within the p95 goal.
        out["verified_rps_within_goal"] = best.open.target_rate
        out["replicas_for_target_verified"] = float(
            math.ceil(CAPACITY_TARGET_RPS / best.open.target_rate)
        )
    return out
