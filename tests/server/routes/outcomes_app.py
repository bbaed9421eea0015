"""A small app with only the store-backed routes, for testing them without a model.

It wires the routes exactly as server.app does (the same exception handlers, the same
runtime lifecycle), minus inference.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from server.experiments.metrics import GateMetrics
from server.monitoring.metrics import Metrics
from server.routes import events, experiments, feedback
from server.routes.errors import exception_handlers
from server.settings import Settings
from server.store import store_from_dsn
from server.store.interface import Store
from server.store.metrics import StoreMetrics
from server.store.runtime import StoreRuntime

__all__ = ["TOKEN", "outcomes_client"]

TOKEN = "outcomes-admin-token-0123"


@contextmanager
def outcomes_client(
    dsn: str | None = None,
    *,
    store: Store | None = None,
    admin_token: str | None = TOKEN,
    tmp: Path = Path("."),
) -> Iterator[tuple[TestClient[Any], StoreRuntime]]:
    """A started test client for the experiment, event and feedback routes, and its runtime."""
    settings = Settings(artifacts=tmp, admin_token=admin_token, workers=1)
    metrics = Metrics(settings)
    if store is None:
        assert dsn is not None
        store = store_from_dsn(dsn)
    runtime = StoreRuntime(store, StoreMetrics(metrics.registry), GateMetrics(metrics.registry))
    app = Litestar(
        route_handlers=[
            *experiments.routes(runtime, admin_token),
            *events.routes(runtime),
            *feedback.routes(runtime),
        ],
        on_startup=[runtime.start],
        on_shutdown=[runtime.stop],
        exception_handlers=exception_handlers(settings, metrics, logging.getLogger("test")),
    )
    with TestClient(app) as client:
        yield client, runtime
