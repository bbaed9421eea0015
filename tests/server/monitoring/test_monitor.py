"""server.monitoring.monitor: the store gauge is true from the start, the monitoring
switch turns the per-request counting and the scheduled jobs off, and drift thresholds
come with the manifest, or are calibrated once per version and window size for every
worker when it has none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from server.app import create_app
from server.domain.artifact import Manifest
from server.monitoring.gauges import MonitoringGauges
from server.monitoring.monitor import Monitor, MonitorSettings
from server.store.interface import Store
from tests.server.conftest import SCAN, make_settings
from tests.server.store.backends import anyio_backend, pg_dsn, store, store_dsn

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]
ROOT = Path(__file__).resolve().parents[3]


def _gauge(client: TestClient[Any], name: str) -> float | None:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_store_up_is_probed_at_start_up(artifacts: Path) -> None:
    """scanopt_store_up reads 1 before the first drift flush has run."""
    settings = make_settings(artifacts, drift_flush_s=600.0, monitor_interval_s=3600.0)
    with TestClient(create_app(settings)) as client:
        assert _gauge(client, "scanopt_store_up") == 1.0


def test_monitoring_off_counts_nothing_and_runs_no_job(artifacts: Path) -> None:
    """Off: served rows are not kept for drift, no history is recorded, only the health
    flush runs; serving answers as before."""
    settings = make_settings(artifacts, monitoring=False, drift_flush_s=600.0)
    with TestClient(create_app(settings)) as client:
        worker = client.app.state.worker
        assert client.post("/v1/predict", json=SCAN).status_code == 200
        assert worker.predictor.drift is None
        assert worker.monitor.counter.pending == 0
        assert len(worker.monitor._tasks) == 1  # the health flush only
        portal = client.blocking_portal
        assert portal is not None
        assert portal.call(worker.monitor.flush) == 0
        assert _gauge(client, "scanopt_store_up") == 1.0


def test_monitoring_on_keeps_served_rows(artifacts: Path) -> None:
    """On (the default): a served row is kept for the drift counts."""
    settings = make_settings(artifacts, drift_flush_s=600.0, monitor_interval_s=3600.0)
    with TestClient(create_app(settings)) as client:
        worker = client.app.state.worker
        assert client.post("/v1/predict", json=SCAN).status_code == 200
        assert worker.monitor.counter.pending == 1
        assert len(worker.monitor._tasks) == 2


@pytest.mark.anyio
async def test_thresholds_are_calibrated_once_and_kept_in_the_store(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version exported without its thresholds: the first worker calibrates and keeps
    them; a second worker (a restart, another replica) reads the same ones back without
    calibrating."""
    manifest = msgspec.structs.replace(_committed(), drift_thresholds=None)
    first = await _worker(store, manifest).thresholds(manifest.version, 300)
    assert first is not None
    assert first.rows == 256

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("calibrated again")

    monkeypatch.setattr("server.monitoring.monitor.calibrate", refuse)
    assert await _worker(store, manifest).thresholds(manifest.version, 500) == first


def _current() -> str:
    return (ROOT / "artifacts" / "current").read_text().strip()


def _committed() -> Manifest:
    return msgspec.json.decode(
        (ROOT / "artifacts" / "models" / _current() / "manifest.json").read_bytes(),
        type=Manifest,
    )


def _worker(store: Store, served: Manifest) -> Monitor:
    """One worker's monitor serving `served`, on the committed artifacts."""
    return Monitor(
        store,
        MonitoringGauges(CollectorRegistry()),
        ROOT / "artifacts",
        MonitorSettings(),
        current=lambda: served,
    )


@pytest.mark.anyio
async def test_thresholds_shipped_in_the_manifest_are_used_as_they_are(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The committed version ships its thresholds: a worker uses them at every window size
    without calibrating or writing to the store; thresholds of another method are not
    used (that worker calibrates its own)."""
    manifest = _committed()
    shipped = manifest.drift_thresholds
    assert shipped is not None

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("calibrated")

    monkeypatch.setattr("server.monitoring.monitor.calibrate", refuse)
    monitor = _worker(store, manifest)
    reference = monitor.reference(manifest.version)
    assert reference is not None
    for thresholds in shipped.windows:
        rows = thresholds.rows
        assert await monitor.thresholds(manifest.version, rows + rows // 2) is thresholds
    assert await monitor.thresholds(manifest.version, 10**6) is shipped.windows[-1]
    assert await store.drift_thresholds(manifest.version, 256, reference.method) is None

    monkeypatch.undo()
    other = msgspec.structs.replace(shipped, method="mc1-seed9")
    own = await _worker(
        store, msgspec.structs.replace(manifest, drift_thresholds=other)
    ).thresholds(manifest.version, 256)
    assert own == shipped.windows[0]  # the same computation, made again
    assert await store.drift_thresholds(manifest.version, 256, reference.method)


@pytest.mark.anyio
async def test_a_manifest_rewritten_with_its_calibration_gets_new_thresholds(
    store: Store,
) -> None:
    """The version in service first without its drift calibration (independent rows),
    then reloaded with it, as `just drift-calibrate` leaves it: the reference and the
    thresholds follow, the first calibrated and kept in the store under its method, the
    second the manifest's own."""
    calibrated = _committed()
    served = [msgspec.structs.replace(calibrated, drift=None)]
    monitor = Monitor(
        store,
        MonitoringGauges(CollectorRegistry()),
        ROOT / "artifacts",
        MonitorSettings(),
        current=lambda: served[0],
    )
    before = await monitor.thresholds(calibrated.version, 1024)
    first = monitor.reference(calibrated.version)
    assert first is not None
    assert first.calibration is None
    served[0] = calibrated
    after = await monitor.thresholds(calibrated.version, 1024)
    second = monitor.reference(calibrated.version)
    assert second is not None
    assert second.calibration is not None
    assert before is not None
    assert after is not None
    assert after != before
    # a larger effective window would give smaller thresholds: calibrated ones are larger
    assert after.values["p_empty"]["psi"] > before.values["p_empty"]["psi"]
    # calibrated by the worker and kept for the fleet; then shipped in the manifest
    assert await store.drift_thresholds(calibrated.version, 1024, first.method)
    assert calibrated.drift_thresholds is not None
    assert after in calibrated.drift_thresholds.windows
