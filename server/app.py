"""The Litestar application: wiring only.

`create_app(settings)` builds one worker's objects (`Worker`: metrics, predictor, model
watcher, store, experiment gate, prediction log, prediction ids, the data plane over them,
monitoring and the probation of a newly promoted version), hands each route module what
it needs and returns the app. Sessions are built in the app's startup, that is after
Granian forks the worker, then warmed; only then does /health/ready answer 200.
`build_app` is the factory Granian calls in each worker.

Extending: pass more route handlers/routers (`extra_routes`), startup and shutdown hooks
and state; handlers reach the worker's objects through `app.state.worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from server import heap
from server.content_type import json_bodies_only
from server.dashboard.service import Dashboard
from server.dataplane import DataPlane
from server.docs import docs_render_plugin
from server.docs import routes as docs_routes
from server.docs.openapi import document_errors
from server.experiments.gate import ExperimentGate
from server.experiments.metrics import GateMetrics
from server.inference.artifacts import verify_version
from server.inference.model import load_model
from server.inference.predictor import Predictor
from server.inference.watcher import ModelWatcher
from server.logs import LOGGER_NAME, write_held_every
from server.monitoring.gauges import MonitoringGauges
from server.monitoring.history import HistoryRecorder
from server.monitoring.http import HttpObserver, RouteTemplates
from server.monitoring.metrics import Metrics
from server.monitoring.monitor import Monitor, MonitorSettings
from server.monitoring.probation import Probation, ProbationMetrics, ProbationSettings
from server.monitoring.shadow import ShadowGauges, ShadowMonitor
from server.routes import (
    admin,
    dashboard,
    events,
    experiments,
    feedback,
    health,
    metrics,
    models,
    monitoring,
    predict,
    report,
    v2,
)
from server.routes.errors import exception_handlers
from server.routes.openapi import document_bodies
from server.settings import Settings
from server.shadow import ShadowScorer
from server.store import store_from_dsn
from server.store.buffer import PredictionLog
from server.store.metrics import StoreMetrics
from server.store.prediction_ids import SECRET_NAME, PredictionIds

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
        # The store and what reads or writes it; connected in start(), after the fork.
        self.store = store_from_dsn(settings.store_dsn, pool_size=settings.store_pool_size)
        self.gate = ExperimentGate(
            self.store, GateMetrics(self.metrics.registry), max_age_s=settings.experiment_cache_s
        )
        self.log = PredictionLog(
            self.store,
            StoreMetrics(self.metrics.registry),
            capacity=settings.prediction_log_capacity,
            batch_size=settings.prediction_log_batch,
            flush_interval_s=settings.prediction_log_flush_s,
            share=settings.prediction_log_share,
        )
        self.ids = PredictionIds()  # keyed with the store's shared secret in start()
        self.plane = DataPlane(
            self.predictor,
            self.gate,
            self.log,
            self.ids,
            self.metrics,
            max_batch=settings.max_batch,
        )
        # Shadow scoring (server.shadow): a challenger scores answered scans off the path.
        self.shadow: ShadowScorer | None = None
        self.shadow_monitor: ShadowMonitor | None = None
        if settings.shadow_version is not None:
            shadow_version = settings.shadow_version
            self.shadow = ShadowScorer(
                shadow_version,
                self.log,
                self.metrics.registry,
                load=lambda: load_model(
                    settings.artifacts,
                    intra_op_threads=settings.intra_op_threads,
                    cache_size=0,
                    version=shadow_version,
                ),
                share=settings.shadow_share,
                capacity=settings.shadow_queue,
            )
            self.plane.observe(self.shadow)
            self.shadow_monitor = ShadowMonitor(
                self.store,
                ShadowGauges(self.metrics.registry),
                version=shadow_version,
                share=settings.shadow_share,
                interval_s=settings.monitor_interval_s,
                min_pairs=settings.accuracy_min_labelled,
            )

        self.monitor = Monitor(
            self.store,
            MonitoringGauges(self.metrics.registry),
            settings.artifacts,
            MonitorSettings(
                interval_s=settings.monitor_interval_s,
                flush_s=settings.drift_flush_s,
                drift_window_minutes=settings.drift_window_minutes,
                retention_days=settings.rollup_retention_days,
                min_labelled=settings.accuracy_min_labelled,
                importance_interval_s=settings.importance_interval_s,
                enabled=settings.monitoring,
            ),
            current=lambda: self.predictor.model.manifest if self.predictor.ready else None,
            run=lambda: self.predictor.model.run if self.predictor.ready else None,
            config_loaded=lambda: {self.gate.experiment: self.gate.refreshed_at},
            history=HistoryRecorder(self.metrics),
        )
        if settings.monitoring:
            self.predictor.drift = self.monitor.counter
        self.probation = Probation(
            self.store,
            ProbationMetrics(self.metrics.registry),
            settings.artifacts,
            ProbationSettings.of(settings),
            render=self.metrics.render,
            follow=self.watcher.check,
            verify=verify_version,
            logger=self.logger,
        )
        self._log_writer: asyncio.Task[None] | None = None
        self.dashboard = Dashboard(
            self.metrics,
            self.store,
            self.monitor,
            workers=settings.workers,
            port=settings.port,
            logger=self.logger,
        )

    async def start(self) -> None:
        """Open the store (migrations, experiment configs), then load and warm
        artifacts/current and poll it; a refused model leaves us not ready, an unreachable
        store stops the start."""
        if self.settings.log_flush_s > 0:
            self._log_writer = asyncio.create_task(write_held_every(self.settings.log_flush_s))
        await self.store.open()
        self.ids.use_secret(await self.store.secret(SECRET_NAME))
        await self.gate.start()
        self.log.start()
        await self.watcher.reload()
        self.watcher.start()
        await self.monitor.probe()  # scanopt_store_up says the truth before the first flush
        if self.shadow is not None and self.shadow_monitor is not None:
            await self.shadow.start()
            self.shadow_monitor.start()
        self.monitor.start()
        self.probation.start()
        self.dashboard.start()
        if not self.predictor.ready:
            self.logger.error(
                "worker started without a model: not ready until artifacts/current loads"
            )
        if self.settings.gc_freeze:
            frozen = heap.freeze()  # last: everything the start built is the worker's for good
            self.logger.debug("start-up objects frozen", extra={"fields": {"objects": frozen}})

    async def stop(self) -> None:
        """Stop polling, finish queued work, flush the prediction log, drop live gauges."""
        await self.watcher.stop()
        await self.predictor.close()
        await self.monitor.stop()
        await self.probation.stop()
        await self.dashboard.stop()
        if self.shadow is not None and self.shadow_monitor is not None:
            await self.shadow_monitor.stop()
            await self.shadow.stop()  # its last rows go to the log, flushed next
        await self.log.stop()
        await self.gate.stop()
        await self.store.close()
        self.metrics.worker_exit()
        if self.settings.gc_freeze:
            heap.thaw()
        self.logger.info("worker stopped")
        if self._log_writer is not None:  # writes what it still holds
            self._log_writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._log_writer


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
        *predict.routes(worker.plane),
        *experiments.routes(worker.store, worker.gate, settings.admin_token),
        *report.routes(worker.store),
        *events.routes(worker.store, worker.gate, worker.ids),
        *feedback.routes(worker.store, worker.ids),
        *models.routes(worker.predictor, settings.artifacts, worker.shadow_monitor),
        *health.routes(worker.predictor),
        *metrics.routes(worker.metrics),
        *dashboard.routes(worker.dashboard),
        *monitoring.routes(worker.monitor),
        *v2.routes(settings, worker.predictor, version),
        *docs_routes(),
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
        openapi_config=OpenAPIConfig(
            title="scanopt", version=version, path="/schema", render_plugins=[docs_render_plugin()]
        ),
        request_max_body_size=settings.max_body_bytes,
        middleware=[json_bodies_only],
        state=State({"worker": worker, **(state or {})}),
        logging_config=None,  # the launcher configures logging (JSON lines) for Granian
    )
    document_bodies(app)
    document_errors(app)
    # Outermost, like Litestar's OpenTelemetry middleware: sees 404s, 405s and errors too.
    templates = RouteTemplates((route.path, route.path_format) for route in app.routes)
    app.asgi_handler = HttpObserver(app.asgi_handler, worker.metrics, worker.logger, templates)
    return app


def build_app() -> Litestar:
    """Granian's factory (`server.app:build_app`): settings from SCANOPT_* in each worker."""
    return create_app(Settings.from_env())
