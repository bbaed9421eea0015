"""Ratios, plan/goal checks and the batcher recommendation, from figures made up here."""

from __future__ import annotations

import msgspec

from bench.latency import summarize
from bench.openloop import OpenLoopResult
from bench.report import Check, HttpRun, InProcessFigure
from bench.verdict import (
    batcher_recommendation,
    build_checks,
    capacity,
    monitoring_ratio,
    passed,
    throughput_ratios,
)
from bench.wrk import WrkResult


def _run(
    server: str = "scanopt",
    workers: int = 1,
    batcher: bool | None = False,
    rps: float = 5000.0,
    p95_s: float = 0.002,
    p99_s: float = 0.004,
    path: str = "/v1/predict",
    failure: str | None = None,
    rss: float = 150.0,
) -> HttpRun:
    closed = WrkResult(
        url="u", threads=1, connections=16, duration_s=10, requests=int(rps * 10),
        requests_per_s=rps, p50_ms=1, p90_ms=2, p99_ms=3, max_ms=4,
    )  # fmt: skip
    # 100 samples: 94 fast ones, p95 = the 95th, p99 = the 99th.
    lat = summarize([0.001] * 94 + [p95_s] * 4 + [p99_s] * 2)
    opened = OpenLoopResult(
        url="u", target_rate=1000.0, duration_s=30, connections=32, requests=100,
        achieved_rate=1000.0, latency=lat, send_lag=lat, client_cpu_share=0.1,
    )  # fmt: skip
    return HttpRun(
        name=f"{server}-{workers}w-{batcher}",
        server=server,  # type: ignore[arg-type]
        path=path,
        workers=workers,
        batcher=batcher,
        closed=None if failure else closed,
        open=None if failure else opened,
        peak_rss_mb=[] if failure else [rss],
        failure=failure,
    )


def _figure(name: str, p99_us: float) -> InProcessFigure:
    return InProcessFigure(
        name=name, rounds=100, median_us=p99_us / 2, p99_us=p99_us, mean_us=p99_us, max_us=p99_us
    )


def _by_name(checks: list[Check], name: str, kind: str) -> Check:
    return next(c for c in checks if c.name.startswith(name) and c.kind == kind)


def test_ratios_compare_the_default_batcher_config_at_equal_workers() -> None:
    """scanopt 1w (batcher off) over FastAPI 1w and over the ceiling at 1w and 2w."""
    runs = [
        _run(rps=6000.0, batcher=False),
        _run(rps=9999.0, batcher=True),  # not the default: ignored
        _run(server="fastapi-sklearn", batcher=None, rps=200.0),
        _run(server="ceiling", batcher=None, rps=8000.0),
        _run(workers=2, rps=9000.0, batcher=False),
        _run(server="ceiling", workers=2, batcher=None, rps=12000.0),
    ]
    ratios = throughput_ratios(runs, default_batcher=False)
    assert ratios == {
        "scanopt / fastapi-sklearn (1 worker)": 30.0,
        "scanopt / ceiling (1 worker)": 0.75,
        "scanopt / ceiling (2 workers)": 0.75,
    }


def test_failed_runs_give_no_ratio() -> None:
    """A failed baseline leaves its ratio out instead of dividing by nothing."""
    runs = [_run(), _run(server="fastapi-sklearn", batcher=None, failure="died")]
    assert throughput_ratios(runs, default_batcher=False) == {}


def test_plan_checks_pass_and_goals_report_misses() -> None:
    """Under 50 ms and 200 ms passes the plan even when the tighter goals are missed."""
    inprocess = [_figure("predict_one", 150.0), _figure("recommend", 3000.0)]
    runs = [_run(p95_s=0.008, p99_s=0.01, rss=250.0)]
    checks = build_checks(inprocess, runs, {"scanopt / fastapi-sklearn (1 worker)": 12.0})
    assert _by_name(checks, "one scan in-process p99", "plan").passed is True
    assert _by_name(checks, "one scan in-process p99", "goal").passed is False
    assert _by_name(checks, "scanopt-1w-False /v1/predict open-loop p95", "plan").passed is True
    assert _by_name(checks, "scanopt-1w-False /v1/predict open-loop p95", "goal").passed is False
    assert _by_name(checks, "scanopt-1w-False peak RSS", "goal").passed is False
    assert _by_name(checks, "scanopt / fastapi", "goal").passed is False
    assert passed(checks, failures=[])


def test_missed_plan_target_fails_the_run() -> None:
    """An open-loop p95 of 250 ms misses the 200 ms plan target: the run fails."""
    checks = build_checks([_figure("predict_one", 50.0), _figure("recommend", 50.0)],
                          [_run(p95_s=0.25, p99_s=0.3)], {})  # fmt: skip
    assert _by_name(checks, "scanopt-1w-False /v1/predict open-loop p95", "plan").passed is False
    assert not passed(checks, failures=[])


def test_unmeasured_plan_target_fails_the_run() -> None:
    """No in-process figures at all: the plan checks are 'not measured' and the run fails."""
    checks = build_checks([], [_run()], {})
    assert _by_name(checks, "one scan in-process p99", "plan").passed is None
    assert not passed(checks, failures=[])


def test_any_failure_fails_the_run() -> None:
    """Every check met, but one run errored: the run fails."""
    checks = build_checks([_figure("predict_one", 50.0), _figure("recommend", 50.0)], [_run()], {})
    assert passed(checks, failures=[])
    assert not passed(checks, failures=["wrk against u failed: 3 timeout errors"])


def test_batcher_on_when_it_wins_at_every_worker_count() -> None:
    """+20% req/s and equal p99 at 1 and 2 workers: recommend ON."""
    runs = [
        _run(batcher=False, rps=5000.0),
        _run(batcher=True, rps=6000.0),
        _run(workers=2, batcher=False, rps=8000.0),
        _run(workers=2, batcher=True, rps=9600.0),
    ]
    text = batcher_recommendation(runs)
    assert text.startswith("recommend ON")
    assert "+20.0%" in text


def test_batcher_off_when_it_loses_anywhere() -> None:
    """Faster at 1 worker but slower at 2: recommend OFF."""
    runs = [
        _run(batcher=False, rps=5000.0),
        _run(batcher=True, rps=6000.0),
        _run(workers=2, batcher=False, rps=8000.0),
        _run(workers=2, batcher=True, rps=7000.0),
    ]
    assert batcher_recommendation(runs).startswith("recommend OFF")


def test_batcher_off_when_throughput_gain_costs_tail_latency() -> None:
    """More req/s but a 2x open-loop p99 is not a win."""
    runs = [_run(batcher=False, rps=5000.0), _run(batcher=True, rps=6000.0, p99_s=0.008)]
    assert batcher_recommendation(runs).startswith("recommend OFF")


def test_batcher_not_measured_without_both_runs() -> None:
    """Only batcher-off runs: no recommendation is invented."""
    assert batcher_recommendation([_run(batcher=False)]).startswith("not measured")


def test_variants_with_other_settings_are_not_the_comparison() -> None:
    """A run with extra settings (say, another log level) never stands in for the default."""
    variant = msgspec.structs.replace(_run(rps=9000.0), settings={"SCANOPT_LOG_LEVEL": "WARNING"})
    runs = [variant, _run(rps=6000.0), _run(server="ceiling", batcher=None, rps=8000.0)]
    assert throughput_ratios(runs, default_batcher=False) == {"scanopt / ceiling (1 worker)": 0.75}


def test_capacity_uses_the_widest_default_run() -> None:
    """2 workers at 8,000 req/s on 2 cores: 4,000 per core; 10k at 50% needs 3 replicas."""
    runs = [
        _run(workers=1, rps=5000.0),
        _run(workers=2, rps=8000.0, p95_s=0.002),
        _run(workers=2, batcher=True, rps=20000.0),  # not the default configuration
    ]
    cap = capacity(runs, nproc=2, default_batcher=False)
    assert cap["rps_per_core"] == 4000.0
    assert cap["replicas_for_target_at_utilisation"] == 3.0
    assert cap["verified_rps_within_goal"] == 1000.0
    assert cap["replicas_for_target_verified"] == 10.0


def test_capacity_claims_no_verified_rate_when_p95_missed_the_goal() -> None:
    """An open-loop p95 over 5 ms verifies nothing; only the flat-out estimate remains."""
    cap = capacity([_run(rps=3000.0, p95_s=0.009, p99_s=0.01)], nproc=2, default_batcher=False)
    assert "verified_rps_within_goal" not in cap
    assert cap["replicas_for_target_at_utilisation"] == 7.0


def test_capacity_is_empty_without_a_scanopt_figure() -> None:
    """No successful scanopt run: no capacity is invented."""
    assert capacity([_run(failure="died")], nproc=2, default_batcher=False) == {}


def test_monitoring_cost_is_the_mean_on_over_the_mean_off() -> None:
    """The interleaved pair gives one ratio, checked against the 3% goal; without both
    sides there is no check."""

    def pair(state: str, rps: float) -> HttpRun:
        return msgspec.structs.replace(_run(rps=rps), settings={"SCANOPT_MONITORING": state})

    runs = [pair("on", 4800.0), pair("off", 5000.0), pair("on", 4900.0), pair("off", 5000.0)]
    assert monitoring_ratio(runs) == 4850.0 / 5000.0
    check = _by_name(build_checks([], runs, {}), "monitoring on / off", "goal")
    assert check.passed is True
    slow = [pair("on", 4000.0), pair("off", 5000.0)]
    assert _by_name(build_checks([], slow, {}), "monitoring on / off", "goal").passed is False
    assert monitoring_ratio(runs[:1]) is None
    assert not [c for c in build_checks([], runs[:1], {}) if c.name.startswith("monitoring on")]


def test_the_monitoring_cost_is_a_goal_reported_not_a_failure() -> None:
    """The kept row and the per-row drain cost are checked against 3 µs as goals: a miss
    is reported and the run still passes on its plan checks; unmeasured says so."""
    drain = msgspec.structs.replace(_figure("monitoring_drain", 8000.0), per_row_us=4.02)
    inprocess = [
        _figure("predict_one", 150.0),
        _figure("recommend", 3000.0),
        _figure("monitoring_observe", 2.4),  # median 1.2
        drain,
    ]
    checks = build_checks(inprocess, [_run()], {})
    kept = _by_name(checks, "monitoring work per request", "goal")
    assert (kept.value, kept.passed, kept.target) == (1.2, True, "< 3 µs")
    binned = _by_name(checks, "monitoring cost per request", "goal")
    assert (binned.value, binned.passed) == (4.02, False)
    assert passed(checks, failures=[])
    unmeasured = build_checks(inprocess[:2], [_run()], {})
    assert _by_name(unmeasured, "monitoring cost per request", "goal").passed is None
