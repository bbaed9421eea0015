"""The Litestar application: wiring only.

`create_app(settings)` builds one worker's objects (`Worker`: metrics, predictor, model
watcher), hands them to the route modules and returns the app. Sessions are built in the
app's startup, that is after Granian forks the worker, then warmed; only then does
/health/ready answer 200. `build_app` is the factory Granian calls in each worker.

Extending: pass more route handlers/routers (`extra_routes`), startup and shutdown hooks
and state; handlers reach the worker's objects through `app.state.worker`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from server.inference.predictor import Predictor
from server.inference.watcher import ModelWatcher
from server.logs import LOGGER_NAME
from server.monitoring.http import HttpObserver
from server.monitoring.metrics import Metrics
from server.routes import (
    admin,
    events,
    experiments,
    feedback,
    health,
    metrics,
    models,
    predict,
    report,
    v2,
)
from server.routes.errors import exception_handlers
from server.routes.openapi import document_bodies
from server.settings import Settings
from server.store import store_from_dsn
from server.store.metrics import StoreMetrics
from server.store.runtime import StoreRuntime

__all__ = ["Worker", "build_app", "create_app"]

Hook = Callable[[], Any]


def _scanopt_version() -> str:
    try:
        return package_version("scanopt")
    except PackageNotFoundError:
        return "0+unknown"


class Worker:
    """The live objects of one worker process, shared by its handlers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.logger = logging.getLogger(LOGGER_NAME)
        self.metrics = Metrics(settings)
        self.predictor = Predictor(settings, self.metrics)
        self.watcher = ModelWatcher(
            self.predictor, settings.artifacts, settings.reload_poll_s, self.metrics, self.logger
        )
        # Store, experiment gate and prediction log; connected in start(), after the fork.
        self.runtime = StoreRuntime(
            store_from_dsn(settings.store_dsn, pool_size=settings.store_pool_size),
            StoreMetrics(self.metrics.registry),
            experiment_cache_s=settings.experiment_cache_s,
            log_share=settings.prediction_log_share,
            log_capacity=settings.prediction_log_capacity,
            log_batch_size=settings.prediction_log_batch,
            log_flush_interval_s=settings.prediction_log_flush_s,
        )

    async def start(self) -> None:
        """Open the store (migrations, experiment configs), then load and warm
        artifacts/current and poll it; a refused model leaves us not ready, an unreachable
        store stops the start."""
        await self.runtime.start()
        await self.watcher.reload()
        self.watcher.start()
        if not self.predictor.ready:
            self.logger.error(
                "worker started without a model: not ready until artifacts/current loads"
            )

    async def stop(self) -> None:
        """Stop polling, finish queued work, flush the prediction log, drop live gauges."""
        await self.watcher.stop()
        await self.predictor.close()
        await self.runtime.stop()
        self.metrics.worker_exit()
        self.logger.info("worker stopped")


def create_app(
    settings: Settings,
    *,
    extra_routes: Sequence[ControllerRouterHandler] = (),
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    state: dict[str, Any] | None = None,
) -> Litestar:
    """The app for one worker; nothing is loaded until its startup runs."""
    worker = Worker(settings)
    version = _scanopt_version()
    route_handlers: list[ControllerRouterHandler] = [
        *predict.routes(settings, worker.predictor, worker.runtime),
        *experiments.routes(worker.runtime, settings.admin_token),
        *report.routes(worker.runtime),
        *events.routes(worker.runtime),
        *feedback.routes(worker.runtime),
        *models.routes(worker.predictor, settings.artifacts),
        *health.routes(worker.predictor),
        *metrics.routes(worker.metrics),
        *v2.routes(settings, worker.predictor, version),
        *extra_routes,
    ]
    if settings.admin_token is not None:
        route_handlers += admin.routes(settings.admin_token, worker.predictor, worker.watcher)
    app = Litestar(
        route_handlers=route_handlers,
        on_startup=[worker.start, *on_startup],
        on_shutdown=[*on_shutdown, worker.stop],
        exception_handlers=exception_handlers(settings, worker.metrics, worker.logger),
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins))
        if settings.cors_origins
        else None,
        openapi_config=OpenAPIConfig(title="scanopt", version=version, path="/schema"),
        request_max_body_size=settings.max_body_bytes,
        state=State({"worker": worker, **(state or {})}),
        logging_config=None,  # the launcher configures logging (JSON lines) for Granian
    )
    document_bodies(app)
    # Outermost, like Litestar's OpenTelemetry middleware: sees 404s, 405s and errors too.
    app.asgi_handler = HttpObserver(app.asgi_handler, worker.metrics, worker.logger)
    return app


def build_app() -> Litestar:
    """Granian's factory (`server.app:build_app`): settings from SCANOPT_* in each worker."""
    return create_app(Settings.from_env())
