"""server.dashboard.service: history points are per-interval rates and shares."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from server.dashboard.service import Dashboard
from server.monitoring.figures import Snapshot
from server.monitoring.metrics import Metrics
from tests.server.conftest import make_settings


def _dashboard(artifacts: Path) -> Dashboard:
    settings = make_settings(artifacts)
    store: Any = None  # history never reads the store
    return Dashboard(
        Metrics(settings), store, workers=1, port=1, logger=logging.getLogger("t"), step_s=1.0
    )


def test_history_is_rates_between_snapshots(artifacts: Path) -> None:
    """Each point is the interval's requests/s, 5xx share and slow-prediction share."""
    dashboard = _dashboard(artifacts)
    dashboard.history.add(Snapshot(at=0.0))
    dashboard.history.add(
        Snapshot(at=60.0, predictions=100, predictions_fast=90, api=120, api_failed=6)
    )
    dashboard.history.add(Snapshot(at=120.0, predictions=100, predictions_fast=90, api=120))
    points = dashboard.history_points("1h")
    assert points.t == [60.0, 120.0]
    assert points.requests_per_s == [2.0, 0.0]
    assert points.error_ratio == [0.05, None]  # no request in the second minute: no share
    assert points.slow_ratio[0] is not None
    assert abs(points.slow_ratio[0] - 0.1) < 1e-12


def test_history_of_a_fresh_worker_is_empty(artifacts: Path) -> None:
    """Before two snapshots there is no interval, so no point (the chart shows none)."""
    assert _dashboard(artifacts).history_points("24h").t == []
