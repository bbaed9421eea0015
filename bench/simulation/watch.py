"""What the service's own monitoring saw of a simulated world (GET /v1/monitoring/...).

After a run, `watch` asks the server for its drift report and online accuracy and says
whether the shift was caught: each drifting column of the shift alarms, or the degraded
target's online figures leave their bars (coverage below 0.85, or MAE above 1.2x the
training MAE). Drift counts reach the store within a flush (SCANOPT_DRIFT_FLUSH_S) and the
accuracy rollups within a monitoring interval (SCANOPT_MONITOR_INTERVAL_S), so it polls
for up to `wait_s`.
"""

from __future__ import annotations

import time
from typing import Any, Final

import httpx
import msgspec

from bench.simulation.shifts import Shift

__all__ = ["COVERAGE_FLOOR", "MAE_RATIO", "Signal", "watch"]

COVERAGE_FLOOR: Final = 0.85
MAE_RATIO: Final = 1.2


class Signal(msgspec.Struct, frozen=True, kw_only=True):
    """Whether monitoring caught the shift, with the figures it showed."""

    label: str
    measured: str
    caught: bool


def _drift(columns: list[dict[str, Any]], names: tuple[str, ...]) -> tuple[bool, str]:
    found = {c["column"]: c for c in columns}
    parts, caught = [], True
    for name in names:
        c = found.get(name)
        if c is None or c.get("psi") is None:
            parts.append(f"{name}: no scores")
            caught = False
            continue
        parts.append(f"{name} PSI {c['psi']:.2f} (threshold {c['psi_threshold']:.2f})")
        caught = caught and bool(c.get("alarm", False))
    alarms = sorted(
        ((_worst_ratio(c), c["column"]) for c in columns if c.get("alarm", False)), reverse=True
    )
    listed = ", ".join(f"{name} {ratio:.1f}x" for ratio, name in alarms)
    return caught, "; ".join(parts) + f"; alarms (worst score over threshold): {listed or 'none'}"


def _worst_ratio(column: dict[str, Any]) -> float:
    ratios = [
        column[score] / column[f"{score}_threshold"]
        for score in ("psi", "wasserstein", "jensen_shannon")
        if column.get(score) is not None and column.get(f"{score}_threshold")
    ]
    return max(ratios, default=0.0)


def _degraded(groups: list[dict[str, Any]], target: str) -> tuple[bool, str]:
    overall = [g for g in groups if g["arm"] == "all"]
    if not overall:
        return False, "no labelled outcomes yet"
    t = overall[-1][target]
    if t.get("mae") is None:
        return False, t.get("note") or "no figure"
    worse = t["coverage"] < COVERAGE_FLOOR or t["mae"] > MAE_RATIO * (t["training_mae"] or 0)
    return worse, (
        f"{target} online MAE {t['mae']:.2f} vs training {t['training_mae']:.2f}, "
        f"coverage {t['coverage']:.3f} (n = {t['n']})"
    )


def watch(url: str, shift: Shift, *, wait_s: float = 30.0) -> Signal:
    """Poll the monitoring API until the shift shows or `wait_s` runs out."""
    deadline = time.monotonic() + wait_s
    caught, measured = False, "no answer"
    with httpx.Client(base_url=url, timeout=10.0) as http:
        while True:
            if shift.degraded is not None:
                body = http.get("/v1/monitoring/accuracy", params={"window": "1h"}).json()
                caught, measured = _degraded(body["groups"], shift.degraded)
            else:
                body = http.get("/v1/monitoring/drift").json()
                names = shift.drifting or ("volatility_index",)
                if body.get("note"):
                    caught, measured = False, body["note"]
                else:
                    caught, measured = _drift(body["columns"], names)
                    if not shift.drifting:  # the default world: what alarms, and accuracy
                        body = http.get("/v1/monitoring/accuracy", params={"window": "1h"})
                        _, figures = _degraded(body.json()["groups"], "duration_s")
                        measured = f"{measured}; {figures}"
                        break
            if caught or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    if shift.degraded is not None:
        label = f"monitoring shows {shift.degraded} degraded ({shift.name})"
    elif shift.drifting:
        label = f"drift alarm on {', '.join(shift.drifting)} ({shift.name})"
    else:
        label = "drift in the default world (informational)"
    return Signal(label=label, measured=measured, caught=caught)
