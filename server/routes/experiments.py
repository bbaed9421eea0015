"""GET /v1/experiments[/{name}] and PUT /v1/admin/experiments/{name} (bearer token).

A change is written to the store (atomically, validated: weights naming every arm and
summing to 1, coverage in [0, 1]), applied at once in this worker, and picked up by every
other worker and replica within SCANOPT_EXPERIMENT_CACHE_S. Fields left out of the PUT
body keep their value: `{"kill_switch": true}` is the whole kill switch.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, get, put
from litestar.handlers import HTTPRouteHandler

from server.experiments.config import ExperimentConfig, ExperimentUpdate
from server.experiments.gate import ExperimentGate
from server.logs import LOGGER_NAME
from server.routes.admin import admin_guard
from server.routes.params import ExperimentName
from server.schemas import decode_body
from server.store.interface import Store

__all__ = ["routes"]

_UPDATE = msgspec.json.Decoder(ExperimentUpdate)
_LOG = logging.getLogger(LOGGER_NAME)


def routes(store: Store, gate: ExperimentGate, admin_token: str | None) -> list[HTTPRouteHandler]:
    """The experiment handlers; the admin PUT only when a token is configured."""

    @get("/v1/experiments", tags=["experiments"])
    async def list_experiments() -> list[ExperimentConfig]:
        """Every experiment's config, as stored."""
        return await store.list_experiments()

    @get("/v1/experiments/{name:str}", tags=["experiments"])
    async def get_experiment(name: ExperimentName) -> ExperimentConfig:
        """One experiment's config as stored (404 naming the known experiments)."""
        return await store.get_experiment(name)

    handlers: list[HTTPRouteHandler] = [list_experiments, get_experiment]
    if admin_token is None:
        return handlers

    @put(
        "/v1/admin/experiments/{name:str}",
        guards=[admin_guard(admin_token)],
        opt={"body": ExperimentUpdate},
        tags=["admin"],
    )
    async def update_experiment(
        name: ExperimentName, request: Request[Any, Any, Any]
    ) -> ExperimentConfig:
        """Change coverage, weights and/or the kill switch; 422 says which rule was broken."""
        update = decode_body(_UPDATE, await request.body())
        config = await store.update_experiment(name, update, datetime.now(UTC))
        gate.accept(config)
        _LOG.warning(
            "experiment changed",
            extra={
                "fields": {
                    "experiment": name,
                    "change": msgspec.to_builtins(update),
                    "version": config.version,
                }
            },
        )
        return config

    return [*handlers, update_experiment]
