"""A small app with only the store-backed routes, for testing them without a model.

It wires the routes exactly as server.app does (the same exception handlers, the same
start and stop order of store, gate, prediction log and ids), minus inference.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from server.experiments.gate import ExperimentGate
from server.experiments.metrics import GateMetrics
from server.monitoring.metrics import Metrics
from server.routes import events, experiments, feedback
from server.routes.errors import exception_handlers
from server.settings import Settings
from server.store import store_from_dsn
from server.store.buffer import PredictionLog
from server.store.interface import Store
from server.store.metrics import StoreMetrics
from server.store.prediction_ids import SECRET_NAME, PredictionIds

__all__ = ["TOKEN", "Outcomes", "outcomes_client"]

TOKEN = "outcomes-admin-token-0123"


class Outcomes:
    """The store-backed objects behind the routes, started and stopped as server.app does."""

    def __init__(self, store: Store, metrics: Metrics, settings: Settings) -> None:
        self.store = store
        self.gate = ExperimentGate(
            store, GateMetrics(metrics.registry), max_age_s=settings.experiment_cache_s
        )
        self.log = PredictionLog(
            store,
            StoreMetrics(metrics.registry),
            capacity=settings.prediction_log_capacity,
            batch_size=settings.prediction_log_batch,
            flush_interval_s=settings.prediction_log_flush_s,
            share=settings.prediction_log_share,
        )
        self.ids = PredictionIds()

    async def start(self) -> None:
        await self.store.open()
        self.ids.use_secret(await self.store.secret(SECRET_NAME))
        await self.gate.start()
        self.log.start()

    async def stop(self) -> None:
        await self.log.stop()
        await self.gate.stop()
        await self.store.close()


@contextmanager
def outcomes_client(
    dsn: str | None = None,
    *,
    store: Store | None = None,
    admin_token: str | None = TOKEN,
    tmp: Path = Path("."),
) -> Iterator[tuple[TestClient[Any], Outcomes]]:
    """A started test client for the experiment, event and feedback routes, and its objects."""
    settings = Settings(artifacts=tmp, admin_token=admin_token, workers=1)
    metrics = Metrics(settings)
    if store is None:
        assert dsn is not None
        store = store_from_dsn(dsn, pool_size=4)
    runtime = Outcomes(store, metrics, settings)
    app = Litestar(
        route_handlers=[
            *experiments.routes(runtime.store, runtime.gate, admin_token),
            *events.routes(runtime.store, runtime.gate, runtime.ids),
            *feedback.routes(runtime.store, runtime.ids),
        ],
        on_startup=[runtime.start],
        on_shutdown=[runtime.stop],
        exception_handlers=exception_handlers(settings, metrics, logging.getLogger("test")),
    )
    with TestClient(app) as client:
        yield client, runtime
