"""promtool and server.monitoring.alerts answer the same on the same random series.

Each world draws SLI shares, model figures, drift, readiness, store and config series at
random (seeded) around every threshold; the module's answer becomes the expected alerts
of a promtool rule test over alerts.yml (annotations stripped: parity is about the
conditions), and promtool must agree on every alert and every label set.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

from server.monitoring.alerts import Figures, VersionAccuracy, evaluate
from tests.deploy.tools import RULES, promtool

WORLDS = 6
INSTANCE = "a:1"
SLI_MINUTES = {"5m": 5, "30m": 30, "1h": 60, "6h": 360, "3d": 4320}
# Alerts evaluated at a time past every rule's `for:` hold.
EVAL_MINUTES = {
    "ScanoptAccuracyDegraded": 20,
    "ScanoptCoverageOutOfBand": 20,
    "ScanoptFeatureDrift": 15,
    "ScanoptImportanceDrift": 35,
    "ScanoptWorkerNotReady": 20,
    "ScanoptStoreUnreachable": 5,
    "ScanoptPredictionLogDropped": 12,
    "ScanoptExperimentConfigStale": 5,
}
SLO_ALERTS = (
    "ScanoptLatencySLOPage",
    "ScanoptLatencySLOTicket",
    "ScanoptAvailabilitySLOPage",
    "ScanoptAvailabilitySLOTicket",
)


def _series(name: str, labels: dict[str, str], values: list[float]) -> dict[str, str]:
    text = ",".join(
        f'{k}="{v}"' for k, v in {"job": "scanopt", "instance": INSTANCE, **labels}.items()
    )
    return {"series": f"{name}{{{text}}}", "values": " ".join(repr(v) for v in values)}


def _cumulative(rate: float, shares: list[float]) -> list[float]:
    """A counter growing by rate x share each minute, from 0."""
    values = [0.0]
    for share in shares:
        values.append(values[-1] + rate * share)
    return values


def _window_ratio(bad: list[float], total: list[float], minutes: int, at: int) -> float | None:
    """What rate(bad[w]) / rate(total[w]) gives at `at` on minute samples: both counters
    share sample times, so Prometheus's extrapolation cancels in the ratio."""
    first = max(0, at - minutes)
    denominator = total[at] - total[first]
    return None if denominator == 0 else (bad[at] - bad[first]) / denominator


def _two_phase(rng: random.Random, shares: list[float], minutes: int) -> list[float]:
    switch = rng.randrange(1, minutes)
    before, after = rng.choice(shares), rng.choice(shares)
    return [before] * switch + [after] * (minutes - switch)


def _world(rng: random.Random) -> tuple[list[dict[str, str]], int, Figures, dict[str, Figures]]:
    """Series, the SLO eval time and the figures then, and the figures at each later check."""
    series: list[dict[str, str]] = []
    at = rng.choice([90, 380])
    slow = _two_phase(rng, [0.0, 0.004, 0.02, 0.08, 0.2], at)
    failed = _two_phase(rng, [0.0, 0.0004, 0.003, 0.008, 0.03], at)
    total = _cumulative(100.0, [1.0] * at)
    fast = _cumulative(100.0, [1 - s for s in slow])
    errors = _cumulative(100.0, failed)
    route = {"route": "/v1/predict", "method": "POST"}
    series += [
        _series("scanopt_http_request_duration_seconds_count", {**route, "status": "200"}, total),
        _series(
            "scanopt_http_request_duration_seconds_bucket",
            {**route, "status": "200", "le": "0.05"},
            fast,
        ),
        _series(
            "scanopt_http_requests_total",
            {**route, "status": "200"},
            [t - e for t, e in zip(total, errors, strict=True)],
        ),
        _series("scanopt_http_requests_total", {**route, "status": "503"}, errors),
    ]
    slow_count = [t - f for t, f in zip(total, fast, strict=True)]
    slo = Figures(
        instance=INSTANCE,
        latency_error={
            w: r
            for w, m in SLI_MINUTES.items()
            if (r := _window_ratio(slow_count, total, m, at)) is not None
        },
        availability_error={
            w: r
            for w, m in SLI_MINUTES.items()
            if (r := _window_ratio(errors, total, m, at)) is not None
        },
    )

    groups = []
    for version in ("v1", "v2"):
        labelled = rng.choice([100, 399, 400, 1000])
        mae = {
            "result_count": rng.choice([5.0, 9.9, 10.5, 13.0]),
            "duration_s": rng.choice([2.0, 4.0, 5.5]),
        }
        training = {"result_count": rng.choice([6.0, 9.0]), "duration_s": rng.choice([1.5, 3.0])}
        coverage = {t: rng.choice([0.8, 0.86, 0.9, 0.96]) for t in mae}
        groups.append(
            VersionAccuracy(
                version=version,
                labelled=labelled,
                mae=mae,
                training_mae=training,
                coverage=coverage,
            )
        )
        const = 40 * [0.0]
        series.append(
            _series(
                "scanopt_online_labelled",
                {"version": version, "window": "1h"},
                [labelled + c for c in const],
            )
        )
        for target in mae:
            tv = {"target": target, "version": version}
            series += [
                _series("scanopt_online_mae", {**tv, "window": "1h"}, [mae[target]] * 40),
                _series("scanopt_training_mae", tv, [training[target]] * 40),
                _series("scanopt_online_coverage", {**tv, "window": "1h"}, [coverage[target]] * 40),
            ]
    alarms = {f: rng.random() < 0.4 for f in ("volatility_index", "universe", "timeframe")}
    series += [
        _series("scanopt_drift_alarm", {"feature": f}, [float(a)] * 40) for f, a in alarms.items()
    ]
    ndcg = {v: rng.choice([0.8, 0.89, 0.95]) for v in ("v1", "v2")}
    series += [
        _series("scanopt_importance_ndcg", {"version": v}, [n] * 40) for v, n in ndcg.items()
    ]
    before, after = rng.choice([0, 1, 2]), rng.choice([0, 1, 2])
    series.append(_series("scanopt_ready", {}, [float(before)] * 10 + [float(after)] * 20))
    store_up = rng.random() < 0.5
    series.append(_series("scanopt_store_up", {}, [float(store_up)] * 10))
    jump = rng.choice([0.0, 3.0])
    series.append(
        _series(
            "scanopt_store_dropped_total",
            {"kind": "prediction", "reason": "buffer_full"},
            [1.0] * 10 + [1.0 + jump] * 10,
        )
    )
    stale = rng.random() < 0.5
    ages = [60.0 * m for m in range(11)] if stale else [1.0 + m % 2 for m in range(11)]
    series.append(
        _series("scanopt_experiment_config_age_seconds", {"experiment": "ml_scanning"}, ages)
    )
    later = {
        "model": Figures(instance=INSTANCE, accuracy=groups, drift_alarms=alarms, ndcg=ndcg),
        "ready": Figures(instance=INSTANCE, ready=after, ready_peak=max(before, after)),
        "store": Figures(instance=INSTANCE, store_up=store_up),
        "dropped": Figures(instance=INSTANCE, dropped_10m={("prediction", "buffer_full"): jump}),
        "config": Figures(instance=INSTANCE, config_age_s={"ml_scanning": ages[5]}),
    }
    return series, at, slo, later


_FIGURES_FOR = {
    "ScanoptAccuracyDegraded": "model",
    "ScanoptCoverageOutOfBand": "model",
    "ScanoptFeatureDrift": "model",
    "ScanoptImportanceDrift": "model",
    "ScanoptWorkerNotReady": "ready",
    "ScanoptStoreUnreachable": "store",
    "ScanoptPredictionLogDropped": "dropped",
    "ScanoptExperimentConfigStale": "config",
}


def _expected(name: str, figures: Figures) -> list[dict[str, Any]]:
    return [
        {"exp_labels": {**alert.labels, "severity": alert.severity}}
        for alert in evaluate(figures)
        if alert.name == name
    ]


def test_promtool_and_the_module_agree(tmp_path: Path) -> None:
    """On random worlds around every threshold, promtool fires exactly what the module says."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    names = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert names - {"ScanoptDown"} == set(SLO_ALERTS) | set(EVAL_MINUTES)

    rng = random.Random(1)
    tests = []
    fired = set()
    for _ in range(WORLDS):
        series, at, slo, later = _world(rng)
        checks = [
            {"alertname": n, "eval_time": f"{at}m", "exp_alerts": _expected(n, slo)}
            for n in SLO_ALERTS
        ]
        checks += [
            {
                "alertname": n,
                "eval_time": f"{m}m",
                "exp_alerts": _expected(n, later[_FIGURES_FOR[n]]),
            }
            for n, m in EVAL_MINUTES.items()
        ]
        fired |= {c["alertname"] for c in checks if c["exp_alerts"]}
        tests.append({"interval": "1m", "input_series": series, "alert_rule_test": checks})
    assert fired == names - {"ScanoptDown"}, "the worlds should make every alert fire somewhere"
    (tmp_path / "parity_test.yml").write_text(
        yaml.safe_dump({"rule_files": ["alerts.yml"], "evaluation_interval": "1m", "tests": tests})
    )
    promtool("test", "rules", "parity_test.yml", cwd=tmp_path)
