"""Reading a monitoring answer: a shift is caught only when its own signal shows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bench.simulation import watch as watch_module
from bench.simulation.shifts import SHIFTS

_REAL_CLIENT = httpx.Client


def _serve(
    monkeypatch: pytest.MonkeyPatch, drift: dict[str, Any], accuracy: dict[str, Any]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = drift if request.url.path.endswith("/drift") else accuracy
        return httpx.Response(200, json=body)

    def client(**kwargs: Any) -> httpx.Client:
        return _REAL_CLIENT(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(watch_module.httpx, "Client", client)


def _column(name: str, psi: float, alarm: bool) -> dict[str, Any]:
    return {"column": name, "psi": psi, "psi_threshold": 0.2, "alarm": alarm}


def test_drift_shift_is_caught_when_its_columns_alarm(monkeypatch: pytest.MonkeyPatch) -> None:
    """volatility is caught by an alarm on volatility_index, not by another column's."""
    columns = [_column("volatility_index", 3.0, True), _column("rsi_min", 0.01, False)]
    _serve(monkeypatch, {"columns": columns}, {})
    signal = watch_module.watch("http://sim", SHIFTS["volatility"], wait_s=0)
    assert signal.caught
    assert "volatility_index PSI 3.00" in signal.measured
    _serve(monkeypatch, {"columns": [_column("volatility_index", 0.05, False)]}, {})
    assert not watch_module.watch("http://sim", SHIFTS["volatility"], wait_s=0).caught


def test_slow_provider_is_caught_by_duration_coverage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online duration coverage below 0.85 counts as degraded; within bars it does not."""

    def groups(coverage: float) -> dict[str, Any]:
        figures = {"mae": 3.1, "coverage": coverage, "training_mae": 3.0, "n": 500}
        return {"groups": [{"arm": "all", "duration_s": figures}]}

    _serve(monkeypatch, {}, groups(0.40))
    assert watch_module.watch("http://sim", SHIFTS["slow_provider"], wait_s=0).caught
    _serve(monkeypatch, {}, groups(0.90))
    assert not watch_module.watch("http://sim", SHIFTS["slow_provider"], wait_s=0).caught
