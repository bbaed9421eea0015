"""The gate: per-user decisions from cached configs, refreshed from the store."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from server.errors import ExperimentNotFoundError
from server.experiments.config import ExperimentUpdate
from server.experiments.gate import ExperimentGate
from server.experiments.metrics import GateMetrics
from server.settings import Settings
from server.store import store_from_dsn
from server.store.interface import Store
from tests.server.conftest import SCAN, TOKEN
from tests.server.granian_process import ServerProcess, server_env
from tests.server.store.backends import anyio_backend, pg_dsn, store, store_dsn

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]

pytestmark = pytest.mark.anyio
USERS = [f"user-{i}" for i in range(400)]


def _gate(store: Store, **kw: float) -> tuple[ExperimentGate, CollectorRegistry]:
    registry = CollectorRegistry()
    kw.setdefault("max_age_s", Settings().experiment_cache_s)
    return ExperimentGate(store, GateMetrics(registry), **kw), registry


async def _change(store: Store, **fields: Any) -> None:
    await store.update_experiment("ml_scanning", ExperimentUpdate(**fields), datetime.now(UTC))


async def test_ml_is_on_for_treatment_only(store: Store) -> None:
    """Under the default config, users split into both arms and only treatment gets ML."""
    gate, _ = _gate(store)
    await gate.refresh()
    decisions = [gate.decide(u) for u in USERS]
    assert {d.arm for d in decisions} == {"control", "treatment"}
    assert all(d.ml_enabled == (d.arm == "treatment") for d in decisions)
    assert all(d.experiment == "ml_scanning" for d in decisions)


async def test_decisions_match_the_pure_assignment(store: Store) -> None:
    """The gate's cached ranges give the same arm as the config's own hash."""
    gate, _ = _gate(store)
    await gate.refresh()
    config = gate.config("ml_scanning")
    assert [gate.decide(u).arm for u in USERS] == [config.assign(u) for u in USERS]


async def test_kill_switch_turns_ml_off_for_everyone(store: Store) -> None:
    """With the kill switch on, nobody is in the experiment and ML is off, without errors."""
    gate, _ = _gate(store)
    await _change(store, kill_switch=True)
    await gate.refresh()
    assert {(d.arm, d.ml_enabled) for d in map(gate.decide, USERS)} == {(None, False)}


async def test_zero_coverage_puts_nobody_in(store: Store) -> None:
    """Coverage 0 keeps every user outside (arm None, ML off)."""
    gate, _ = _gate(store)
    await _change(store, coverage=0.0, force=True)
    await gate.refresh()
    assert {gate.decide(u).arm for u in USERS} == {None}


async def test_accept_applies_a_local_change_at_once(store: Store) -> None:
    """The worker that made a change uses it immediately; an older version never wins."""
    gate, _ = _gate(store)
    await gate.refresh()
    old = gate.config("ml_scanning")
    new = await store.update_experiment(
        "ml_scanning", ExperimentUpdate(kill_switch=True), datetime.now(UTC)
    )
    gate.accept(new)
    assert gate.decide("anyone").ml_enabled is False
    gate.accept(old)
    assert gate.config("ml_scanning").kill_switch is True


async def test_unknown_experiment_is_named(store: Store) -> None:
    """Asking the gate for an experiment it does not know lists the known ones."""
    gate, _ = _gate(store)
    await gate.refresh()
    with pytest.raises(ExperimentNotFoundError, match="'nope'; known experiments: ml_scanning"):
        gate.config("nope")


async def test_background_refresh_picks_up_another_workers_change(store_dsn: str) -> None:
    """A change made through another store instance reaches this gate without a request."""
    mine, theirs = store_from_dsn(store_dsn, pool_size=4), store_from_dsn(store_dsn, pool_size=4)
    await mine.open()
    await theirs.open()
    gate, registry = _gate(mine, max_age_s=0.2)
    await gate.start()
    try:
        await _change(theirs, kill_switch=True)
        for _ in range(250):
            if gate.config("ml_scanning").kill_switch:
                break
            await asyncio.sleep(0.02)
        assert gate.decide("anyone").ml_enabled is False
        assert registry.get_sample_value("scanopt_experiment_config_loaded_timestamp_seconds")
    finally:
        await gate.stop()
        await mine.close()
        await theirs.close()


async def test_refresh_failure_keeps_the_last_good_config(store_dsn: str) -> None:
    """When the store goes away, the gate keeps deciding with what it had and counts it."""
    store = store_from_dsn(store_dsn, pool_size=4)
    await store.open()
    gate, registry = _gate(store, max_age_s=0.05)
    await gate.start()
    before = [gate.decide(u) for u in USERS]
    await store.close()
    for _ in range(250):
        if registry.get_sample_value("scanopt_experiment_config_refresh_failures_total"):
            break
        await asyncio.sleep(0.02)
    try:
        assert registry.get_sample_value("scanopt_experiment_config_refresh_failures_total")
        assert [gate.decide(u) for u in USERS] == before
    finally:
        await gate.stop()


@pytest.mark.slow
def test_kill_switch_reaches_another_server_within_2s(
    pg_dsn: str, artifacts: Path, tmp_path: Path
) -> None:
    """Two real servers (Granian, 2 workers each) share one PostgreSQL: a kill switch
    flipped through one is in force on every worker of the other within 2 s."""
    servers = []
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        env = server_env(home, artifacts, store_dsn=pg_dsn, admin_token=TOKEN, log_level="WARNING")
        servers.append(ServerProcess(env, home / "server.log"))
    a, b = servers
    try:
        for server in servers:
            server.wait_ready()
        scan = {**SCAN, "user_id": "u-1"}  # a treatment user
        with httpx.Client(timeout=10) as http:
            assert http.post(f"{b.url}/v1/predict", json=scan).json()["ml_enabled"] is True
            flipped = time.monotonic()
            response = http.put(
                f"{a.url}/v1/admin/experiments/ml_scanning",
                json={"kill_switch": True},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert response.status_code == 200
            first_seen = None
            while time.monotonic() - flipped < 2.0:
                answer = http.post(f"{b.url}/v1/predict", json=scan)
                assert answer.status_code == 200
                if first_seen is None and answer.json()["ml_enabled"] is False:
                    first_seen = time.monotonic() - flipped
                time.sleep(0.01)
            # Past 2 s every worker of b must have it: many requests reach both workers.
            after = [http.post(f"{b.url}/v1/predict", json=scan).json() for _ in range(40)]
        assert {(x["arm"], x["ml_enabled"]) for x in after} == {(None, False)}
        assert first_seen is not None
        print(f"kill switch first seen on the other server after {first_seen:.3f} s")
    finally:
        for server in servers:
            server.stop()
