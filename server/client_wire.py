"""What the scanner clients send and receive, shared by the sync and the async client.

Requests are the server's own types (`Scan`, the events, `Feedback`), so they carry the
fields the server expects and are checked by the same rules when they are built. Answers
decode into this module's structs, which ignore fields they do not know, so a newer server
never breaks an older scanner.

The retry policy lives here too, so both clients retry alike (`resend_reason`), within
the client's `retries`, with exponential backoff and jitter:

- every call when it cannot have been processed (connection refused or timed out while
  connecting) or the server answers 503 (honouring Retry-After);
- an idempotent call (events by `event_id`, feedback by `prediction_id`) also after a
  read timeout or a connection dropped at any point;
- a prediction (single, batch, recommend) once more when the connection was closed or
  reset before any of the answer arrived: the keep-alive race of HTTP/1.1, where a worker
  that is stopping (SIGHUP, a deploy) closes an idle connection as the client reuses it,
  which RFC 9112 section 9.3.1 lets a client retry for a request safe to repeat. A
  prediction is: a pure function of the scan, plus a prediction-log row under a new
  `prediction_id` that nothing refers to. Never after a read timeout (the server may be
  computing, and the answer would come too late anyway) nor once the answer began.

The exception tree::

    ScanoptError        status (None: no answer), kind, field
"""

from __future__ import annotations

import contextlib
import random
import uuid
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeVar

import httpx
import msgspec

from server.domain.scan import Scan
from server.store.records import Event, Feedback

__all__ = [
    "RETRY_STATUSES",
    "Ack",
    "Answer",
    "Batch",
    "Change",
    "Interval",
    "Outcome",
    "RecommendAnswer",
    "Report",
    "ReportStats",
    "Resend",
    "ScanoptError",
    "Suggestion",
    "backoff_delay",
    "closed_unanswered",
    "decode_answer",
    "event_fields",
    "feedback_of",
    "new_event_id",
    "recommend_body",
    "report_path",
    "resend_reason",
    "transport_error",
]

T = TypeVar("T")
RETRY_STATUSES: Final = frozenset({503})
MAX_BACKOFF_S: Final = 2.0


class _Answer(msgspec.Struct, frozen=True, kw_only=True):
    """Base of decoded answers: unknown fields are ignored (forward compatible)."""


class Interval(_Answer, frozen=True):
    predicted: float
    lower: float
    upper: float


class Outcome(_Answer, frozen=True):
    result_count: Interval
    duration_s: Interval
    p_empty: float
    confidence: float


class _Gated(_Answer, frozen=True):
    """The A/B decision both gated answers start with."""

    prediction_id: str
    arm: str | None
    ml_enabled: bool
    model_version: str | None = None


class Answer(_Gated, frozen=True):
    """/v1/predict: the A/B decision and, when `ml_enabled`, the prediction."""

    result_count: Interval | None = None
    duration_s: Interval | None = None
    p_empty: float | None = None
    confidence: float | None = None


class Change(_Answer, frozen=True):
    field: str
    from_: str | int | float = msgspec.field(name="from")
    to: str | int | float


class Suggestion(_Answer, frozen=True):
    scan: Scan
    prediction: Outcome
    changes: list[Change]
    score: float


class RecommendAnswer(_Gated, frozen=True):
    """/v1/recommend: the decision and, when `ml_enabled`, the suggestions."""

    current: Outcome | None = None
    current_in_range: bool | None = None
    current_score: float | None = None
    suggestions: list[Suggestion] | None = None
    candidates_scored: int | None = None
    unreachable: bool | None = None  # no suggestion predicted inside the range
    note: str | None = None


class Batch(_Answer, frozen=True):
    """/v1/predict/batch: one answer per scan."""

    predictions: list[Answer]
    model_version: str | None = None


class Ack(_Answer, frozen=True):
    """An event or feedback was stored ("created") or had been already ("duplicate")."""

    id: str
    status: str


class _ErrorBody(_Answer, frozen=True):
    error: str
    kind: str = "error"
    field: str | None = None


class ReportStats(msgspec.Struct, kw_only=True):
    """What became of the reporting calls (events, feedback) sent in the background.

    `queued` were accepted into the queue; `sent` were acknowledged by the server;
    `dropped` never reached it (the queue was full, or still held them at close);
    `failed` were refused by the server or still failed after every retry; `skipped`
    feedback had no prediction to refer to. queued = sent + failed + pending (+ dropped at
    close).
    """

    queued: int = 0
    sent: int = 0
    dropped: int = 0
    failed: int = 0
    skipped: int = 0


class ScanoptError(Exception):
    """A call failed: `status` is the HTTP status (None: no answer), `kind` and `field`
    come from the server's error body."""

    def __init__(
        self, message: str, *, status: int | None, kind: str, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.field = field


def new_event_id() -> str:
    """A fresh client-side event id (retries of one event must reuse it)."""
    return uuid.uuid4().hex


def recommend_body(scan: Scan, min_results: int, max_results: int, limit: int) -> dict[str, Any]:
    """The /v1/recommend request body."""
    return {"scan": scan, "min_results": min_results, "max_results": max_results, "limit": limit}


def event_fields(
    scan: Scan, answer: Answer | RecommendAnswer | None, extra: dict[str, Any]
) -> dict[str, Any]:
    """The fields of a lifecycle event about `scan` (linked to `answer` when there is one)."""
    fields: dict[str, Any] = {
        "event_id": new_event_id(),
        "user_id": scan.user_id,
        "session_id": scan.session_id,
        "timestamp": datetime.now(UTC),
    }
    if answer is not None:
        fields |= {"prediction_id": answer.prediction_id, "arm": answer.arm}
    fields |= {k: v for k, v in extra.items() if v is not None}
    return fields


def feedback_of(
    answer: Answer | RecommendAnswer | str | None,
    *,
    satisfaction: int,
    usefulness: int,
    suggestion: str | None,
    user_id: str | None,
    session_id: str | None,
) -> Feedback | None:
    """The feedback body, or None when there is no prediction to rate (no answer came)."""
    if answer is None:
        return None
    prediction_id = answer if isinstance(answer, str) else answer.prediction_id
    return Feedback(
        prediction_id=prediction_id,
        satisfaction=satisfaction,
        usefulness=usefulness,
        suggestion=suggestion,
        user_id=user_id,
        session_id=session_id,
    )


def transport_error(path: str, exc: httpx.TransportError) -> ScanoptError:
    """The error for a call that got no answer."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ScanoptError(f"POST {path}: {exc}", status=None, kind="unreachable")
    return ScanoptError(f"POST {path}: {exc!r}", status=None, kind="transport")


Resend = Literal["unreachable", "idempotent", "unanswered"]


def closed_unanswered(exc: httpx.TransportError) -> bool:
    """Whether `exc`, raised before the answer's head arrived, says the server closed or
    reset the connection under the request (not that it is slow: no timeout counts)."""
    if isinstance(exc, httpx.RemoteProtocolError):
        # httpcore's words for an end of stream before any byte of the response.
        return str(exc).startswith("Server disconnected without sending a response")
    return isinstance(exc, httpx.ReadError | httpx.WriteError)  # reset, broken pipe


def resend_reason(
    exc: httpx.TransportError, *, idempotent: bool, before_answer: bool, repeatable: bool
) -> Resend | None:
    """Why a call that failed with `exc` may be sent again, or None if it may not.

    `before_answer`: no part of the answer had arrived (the error came while sending or
    awaiting its head). `repeatable`: the call is safe to repeat and has not been resent
    for "unanswered" yet (a prediction gets one such resend).
    """
    # A refused or unfinished connect was never processed; anything later was sent and
    # maybe processed, so only an idempotent call may go again, or a repeatable one whose
    # connection was closed before it got any answer.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return "unreachable"
    if idempotent:
        return "idempotent"
    if repeatable and before_answer and closed_unanswered(exc):
        return "unanswered"
    return None


def backoff_delay(base_s: float, attempt: int, retry_after: str | None) -> float:
    """Exponential backoff with jitter, at least the server's Retry-After, at most 2 s."""
    delay = base_s * 2.0**attempt * random.uniform(0.5, 1.5)
    if retry_after is not None:
        with contextlib.suppress(ValueError):
            delay = max(delay, float(retry_after))
    return min(delay, MAX_BACKOFF_S)


def decode_answer(path: str, response: httpx.Response, answer: type[T]) -> T:
    """The decoded answer, or the ScanoptError the server's error body describes."""
    if response.status_code >= 400:
        try:
            error = msgspec.json.decode(response.content, type=_ErrorBody)
        except msgspec.DecodeError:
            error = _ErrorBody(error=response.text[:200] or response.reason_phrase)
        raise ScanoptError(
            f"POST {path}: {response.status_code} {error.error}",
            status=response.status_code,
            kind=error.kind,
            field=error.field,
        )
    try:
        return msgspec.json.decode(response.content, type=answer)
    except msgspec.DecodeError as exc:
        raise ScanoptError(
            f"POST {path}: unexpected answer ({exc})", status=response.status_code, kind="decode"
        ) from None


# The two kinds of reporting call, as the background queues carry them.
Report = Event | Feedback


def report_path(report: Report) -> str:
    """Where a reporting call goes."""
    return "/v1/feedback" if isinstance(report, Feedback) else "/v1/events"
