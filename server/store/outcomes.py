"""Events and feedback: idempotent writes keyed by the client (event_id, prediction_id).

`INSERT ... ON CONFLICT DO NOTHING`, then compare the stored canonical body (msgspec's
encoding of the decoded value, so key order and whitespace do not matter): the same body
again is a retry (no second row, nothing counted twice), another body under the same key
is a `ConflictError`. The row keeps typed columns for queries and the body for reading
the value back exactly.
"""

from __future__ import annotations

import msgspec

from server.errors import ConflictError
from server.store.records import (
    Event,
    EventRecord,
    Feedback,
    FeedbackRecord,
    FirstResult,
    ScanCompleted,
)
from server.store.sql import Db, from_us, to_us

__all__ = ["insert_event", "insert_feedback", "select_events", "select_feedback"]

_ENCODER = msgspec.json.Encoder()
_EVENT = msgspec.json.Decoder(Event)
_FEEDBACK = msgspec.json.Decoder(Feedback)


def _check_retry(stored: object, body: str, what: str, field: str) -> bool:
    if stored == body:
        return False
    raise ConflictError(
        f"{what} was already recorded with a different body; a retry must resend the "
        f"same body, and anything new needs a new {field}",
        field=field,
    )


def insert_event(db: Db, event: Event, received_us: int) -> bool:
    """Record `event`; True if new, False for an identical retry, ConflictError otherwise."""
    body = _ENCODER.encode(event).decode()
    completed = event if isinstance(event, ScanCompleted) else None
    first = event if isinstance(event, FirstResult) else None
    created = db.run(
        "INSERT INTO events (event_id, type, user_id, session_id, prediction_id, experiment, "
        "arm, occurred_us, received_us, result_count, duration_s, elapsed_s, suggestion_shown, "
        "suggestion_applied, desired_min, desired_max, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (event_id) DO NOTHING",
        (
            event.event_id,
            type(event).__struct_config__.tag,
            event.user_id,
            event.session_id,
            event.prediction_id,
            event.experiment,
            event.arm,
            to_us(event.timestamp),
            received_us,
            completed.result_count if completed else None,
            completed.duration_s if completed else None,
            first.elapsed_s if first else None,
            completed.suggestion_shown if completed else None,
            completed.suggestion_applied if completed else None,
            completed.desired_min if completed else None,
            completed.desired_max if completed else None,
            body,
        ),
    )
    if created:
        return True
    row = db.one("SELECT body FROM events WHERE event_id = ?", (event.event_id,))
    return _check_retry(row[0] if row else None, body, f"event_id {event.event_id!r}", "event_id")


def select_events(db: Db, since_us: int, until_us: int) -> list[EventRecord]:
    """Events that happened in [since, until), by their own timestamps."""
    rows = db.rows(
        "SELECT body, received_us FROM events WHERE occurred_us >= ? AND occurred_us < ? "
        "ORDER BY occurred_us, event_id",
        (since_us, until_us),
    )
    return [EventRecord(event=_EVENT.decode(b), received_at=from_us(r)) for b, r in rows]


def insert_feedback(db: Db, feedback: Feedback, received_us: int) -> bool:
    """Record `feedback` (one per prediction); True if new, False for an identical retry."""
    body = _ENCODER.encode(feedback).decode()
    created = db.run(
        "INSERT INTO feedback (prediction_id, user_id, session_id, satisfaction, usefulness, "
        "suggestion, received_us, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (prediction_id) DO NOTHING",
        (
            feedback.prediction_id,
            feedback.user_id,
            feedback.session_id,
            feedback.satisfaction,
            feedback.usefulness,
            feedback.suggestion,
            received_us,
            body,
        ),
    )
    if created:
        return True
    row = db.one("SELECT body FROM feedback WHERE prediction_id = ?", (feedback.prediction_id,))
    return _check_retry(
        row[0] if row else None,
        body,
        f"feedback for prediction_id {feedback.prediction_id!r}",
        "prediction_id",
    )


def select_feedback(db: Db, since_us: int, until_us: int) -> list[FeedbackRecord]:
    rows = db.rows(
        "SELECT body, received_us FROM feedback WHERE received_us >= ? AND received_us < ? "
        "ORDER BY received_us, prediction_id",
        (since_us, until_us),
    )
    return [FeedbackRecord(feedback=_FEEDBACK.decode(b), received_at=from_us(r)) for b, r in rows]
