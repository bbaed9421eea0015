"""POST /v1/feedback: a user's rating of one prediction's scan.

`prediction_id` must be an id this service issued (404 naming it otherwise); ratings are
1 to 5; `suggestion` is free text up to 2,000 characters, stored as a bound parameter.
One feedback per prediction: 201 once it is committed, 200 with status "duplicate" for a
retry of the same body, 409 for a different body under the same prediction_id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler

from server.errors import UnknownPredictionError
from server.routes.events import DUPLICATE
from server.schemas import decode_body
from server.store.interface import Store
from server.store.prediction_ids import PredictionIds
from server.store.records import Ack, Feedback

__all__ = ["routes"]

_FEEDBACK = msgspec.json.Decoder(Feedback)


def routes(store: Store, ids: PredictionIds) -> list[HTTPRouteHandler]:
    """The feedback handler."""

    @post("/v1/feedback", opt={"body": Feedback}, tags=["outcomes"], responses=DUPLICATE)
    async def record_feedback(request: Request[Any, Any, Any]) -> Response[Ack]:
        """Record a rating (201), or acknowledge a retry of the same one (200)."""
        feedback = decode_body(_FEEDBACK, await request.body())
        if not ids.issued(feedback.prediction_id):
            raise UnknownPredictionError(feedback.prediction_id)
        created = await store.record_feedback(feedback, datetime.now(UTC))
        return Response(
            Ack(id=feedback.prediction_id, status="created" if created else "duplicate"),
            status_code=201 if created else 200,
        )

    return [record_feedback]
