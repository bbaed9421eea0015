"""POST /v1/events (scan lifecycle events) and GET /v1/analytics/usage.

Events are idempotent by the client's `event_id`: 201 once committed, 200 with status
"duplicate" for a retry of the same body, 409 for a different body under the same id.
They may arrive in any order and are stored with their own timestamps. References are
checked: an unknown `prediction_id` is 404 (ids are recognised without a lookup, see
server.store.prediction_ids); an unknown experiment or arm, or a timestamp more than
timestamp no scanner can send (server.domain.scan.timestamp_problem, the rule scans follow
too), is 422 naming what is allowed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import Parameter

from server.domain.scan import MAX_CLOCK_SKEW, timestamp_problem
from server.errors import (
    ExperimentNotFoundError,
    InvalidInputError,
    UnknownPredictionError,
)
from server.experiments.gate import ExperimentGate
from server.routes.params import instant, one_value_each
from server.schemas import decode_body
from server.store.interface import Store
from server.store.prediction_ids import PredictionIds
from server.store.records import Ack, Event, UsageReport

__all__ = ["DUPLICATE", "MAX_CLOCK_SKEW", "USAGE_WINDOW", "check_event", "routes"]

_EVENT = msgspec.json.Decoder(Event)
USAGE_WINDOW: Final = timedelta(days=7)
_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
# An instant as the document's date-time format states it (server.routes.params.instant).
Instant = Annotated[
    str | None,
    Parameter(
        description="an RFC 3339 date-time with an offset, e.g. 2026-03-02T15:00:00Z",
        schema_extra={"format": "date-time"},
    ),
]
# A retry of a recorded body: the same Ack, 200 instead of 201.
DUPLICATE: Final = {
    200: ResponseSpec(Ack, description="The same body was recorded before: status duplicate")
}


def check_event(gate: ExperimentGate, ids: PredictionIds, event: Event, now: datetime) -> None:
    """Raise if the event refers to something unknown or has a timestamp no scanner sends."""
    try:
        config = gate.config(event.experiment)
    except ExperimentNotFoundError as exc:
        raise InvalidInputError(f"experiment: {exc.message}", field="experiment") from None
    if event.arm is not None and event.arm not in config.arm_names:
        raise InvalidInputError(
            f"arm: unknown arm {event.arm!r} of experiment {config.name!r}: expected one of "
            f"{', '.join(map(repr, config.arm_names))} or null (outside the experiment)",
            field="arm",
        )
    if event.prediction_id is not None and not ids.issued(event.prediction_id):
        raise UnknownPredictionError(event.prediction_id)
    if problem := timestamp_problem(event.timestamp, now):
        raise InvalidInputError(problem, field="timestamp")


def routes(store: Store, gate: ExperimentGate, ids: PredictionIds) -> list[HTTPRouteHandler]:
    """The event and usage handlers."""

    @post("/v1/events", opt={"body": Event}, tags=["outcomes"], responses=DUPLICATE)
    async def record_event(request: Request[Any, Any, Any]) -> Response[Ack]:
        """Record one scan_started, first_result or scan_completed event (201; retry: 200)."""
        event = decode_body(_EVENT, await request.body())
        now = datetime.now(UTC)
        check_event(gate, ids, event, now)
        created = await store.record_event(event, now)
        return Response(
            Ack(id=event.event_id, status="created" if created else "duplicate"),
            status_code=201 if created else 200,
        )

    @get("/v1/analytics/usage", tags=["outcomes"], guards=[one_value_each])
    async def usage(since: Instant = None, until: Instant = None) -> UsageReport:
        """Adoption, scans per session, return rate and drop-off, overall and per arm, over
        events that happened in [since, until) (default: the last 7 days); since must be
        before until (422 otherwise)."""
        end = instant("until", until) or datetime.now(UTC)
        start = instant("since", since) or max(end, _EARLIEST + USAGE_WINDOW) - USAGE_WINDOW
        if start >= end:
            raise InvalidInputError(
                f"since ({start.isoformat()}) must be before until ({end.isoformat()})",
                field="since",
            )
        return await store.usage(start, end)

    return [record_event, usage]
