"""server.dashboard.service: history comes from the store's rollups, per slice, and
drift per feature over time from the stored drift counts."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from server.dashboard.service import Dashboard
from server.domain.artifact import Manifest
from server.monitoring.gauges import MonitoringGauges
from server.monitoring.history import API_REQUESTS, PREDICTION_LATENCY
from server.monitoring.metrics import Metrics
from server.monitoring.monitor import Monitor, MonitorSettings
from server.store.interface import Store
from server.store.monitoring import DriftCount
from server.store.records import MetricRollup
from tests.server.conftest import make_settings
from tests.server.store.backends import anyio_backend, pg_dsn, store, store_dsn

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 30, 14, 30, 20, tzinfo=UTC)


def _manifest() -> Manifest:
    current = (ROOT / "artifacts" / "current").read_text().strip()
    path = ROOT / "artifacts" / "models" / current / "manifest.json"
    return msgspec.json.decode(path.read_bytes(), type=Manifest)


def _dashboard(store: Store, tmp_path: Path, manifest: Manifest | None = None) -> Dashboard:
    metrics = Metrics(make_settings(tmp_path / "artifacts"))
    monitor = Monitor(
        store,
        MonitoringGauges(metrics.registry),
        ROOT / "artifacts",
        MonitorSettings(),
        current=lambda: manifest,
    )
    return Dashboard(metrics, store, monitor, workers=1, port=1, logger=logging.getLogger("t"))


def _rollup(metric: str, labels: str, minute: datetime, n: int, low: float = 0.0) -> MetricRollup:
    return MetricRollup(
        metric=metric, labels=labels, bucket_start=minute, count=n, total=0.0, minimum=low,
        maximum=0.0,
    )  # fmt: skip


async def test_history_is_rates_and_quantiles_per_slice(store: Store, tmp_path: Path) -> None:
    """1 h is 60 one-minute slices ending with the running one; each point is its slice's
    requests/s, 5xx share, slow share and quantiles; an idle slice has no shares."""
    minute = NOW.replace(second=0)
    earlier = minute - timedelta(minutes=10)
    await store.write_rollups(
        [
            _rollup(API_REQUESTS, '{"status":"2xx"}', earlier, 114),
            _rollup(API_REQUESTS, '{"status":"5xx"}', earlier, 6),
            _rollup(PREDICTION_LATENCY, '{"le":"0.005"}', earlier, 90),
            _rollup(PREDICTION_LATENCY, '{"le":"0.1"}', earlier, 10, 0.05),
            _rollup(API_REQUESTS, '{"status":"2xx"}', minute, 40),
        ]
    )
    history = await _dashboard(store, tmp_path).history_points("1h", now=NOW)
    assert len(history.t) == 60
    assert history.step_s == 60.0
    assert history.t[-1] == NOW.timestamp()  # the running slice stands at now
    assert history.t[-2] == minute.timestamp()
    at = history.t.index((earlier + timedelta(minutes=1)).timestamp())
    assert history.requests_per_s[at] == pytest.approx(2.0)
    assert history.error_ratio[at] == pytest.approx(0.05)
    assert history.slow_ratio[at] == pytest.approx(0.1)
    p99 = history.p99[at]
    assert p99 is not None
    assert 0.05 < p99 <= 0.1
    assert history.error_ratio[at - 1] is None
    assert history.p50[at - 1] is None
    # the running slice has lasted 20 s: 40 requests in it are 2 per second
    assert history.requests_per_s[-1] == pytest.approx(2.0)
    assert history.drift_version is None
    assert history.drift == []


async def test_drift_history_scores_each_slice(store: Store, tmp_path: Path) -> None:
    """Drift per feature over time: a slice whose universe mix moved to us_all alarms on
    universe_is_us_all, a slice like the reference does not, and a slice with too few rows
    has no score. (Not the VIX: one window of a market level beyond the training year
    cannot alarm at the stated rate under the manifest's calibration.)"""
    manifest = _manifest()
    assert manifest.drift is not None, "the committed model ships its drift calibration"
    feature = "universe_is_us_all"
    reference = manifest.reference[feature]
    calm = max(range(len(reference.shares)), key=lambda b: reference.shares[b])
    high = min(range(len(reference.shares)), key=lambda b: reference.shares[b])
    minute = NOW.replace(second=0)

    def counts(at: datetime, bins: dict[int, int]) -> list[DriftCount]:
        return [
            DriftCount(bucket_start=at, version=manifest.version, feature=feature, bin=b, n=n)
            for b, n in bins.items()
        ]

    shares = {b: round(2000 * s) for b, s in enumerate(reference.shares) if round(2000 * s)}
    await store.add_drift_counts(
        counts(minute - timedelta(minutes=30), shares)
        + counts(minute - timedelta(minutes=5), {high: 2000})
        + counts(minute - timedelta(minutes=2), {calm: 10})
    )
    history = await _dashboard(store, tmp_path, manifest).history_points("1h", now=NOW)
    assert history.drift_version == manifest.version
    (column,) = [d for d in history.drift if d.feature == feature]
    ratios = dict(zip(history.t, column.ratio, strict=True))

    def end(minutes: int) -> float:
        return (minute - timedelta(minutes=minutes - 1)).timestamp()

    calm_ratio, shifted, thin = ratios[end(30)], ratios[end(5)], ratios[end(2)]
    assert calm_ratio is not None
    assert calm_ratio < 1.0
    assert shifted is not None
    assert shifted > 1.0
    assert thin is None
