"""The Python client for the scanner: predict, recommend, scan events and feedback.

    from server.client import ScanoptClient

    with ScanoptClient("http://127.0.0.1:8002") as scanopt:
        answer = scanopt.predict(scan)             # scan: server.domain.scan.Scan
        if answer.ml_enabled:
            show(answer.result_count, answer.p_empty)
        scanopt.scan_completed(scan, answer, result_count=12, duration_s=3.1)

Requests are the server's own types (`Scan`, the events, `Feedback`), so they have the
fields the server expects; the server checks the values and answers a precise 400/422.
Answers decode into this module's structs, which ignore fields they do not know, so a
newer server never breaks an older scanner.

Every call has a timeout (`timeout_s`, default 1 s: predictions sit on the scan path).
Calls are retried with exponential backoff and jitter when the request cannot have been
processed (connection refused or timed out while connecting) or the server answers 503
(honouring Retry-After). Events and feedback are idempotent on the server (event_id,
prediction_id), so they are also retried after read timeouts and dropped connections:
a retry carries the same event_id and is never counted twice. After the last attempt a
`ScanoptError` says what happened; on any error the scanner should run its standard flow.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import httpx
import msgspec

from server.domain.scan import Scan
from server.store.records import (
    Event,
    Feedback,
    FirstResult,
    ScanCompleted,
    ScanStarted,
)

__all__ = [
    "Ack",
    "Answer",
    "Change",
    "Interval",
    "Outcome",
    "RecommendAnswer",
    "ScanoptClient",
    "ScanoptError",
    "Suggestion",
    "new_event_id",
]

T = TypeVar("T")
_RETRY_STATUSES: Final = frozenset({503})
_MAX_BACKOFF_S: Final = 2.0


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


class Answer(_Answer, frozen=True):
    """/v1/predict: the A/B decision and, when `ml_enabled`, the prediction."""

    prediction_id: str
    arm: str | None
    ml_enabled: bool
    model_version: str | None = None
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


class RecommendAnswer(_Answer, frozen=True):
    """/v1/recommend: the decision and, when `ml_enabled`, the suggestions."""

    prediction_id: str
    arm: str | None
    ml_enabled: bool
    model_version: str | None = None
    current: Outcome | None = None
    current_in_range: bool | None = None
    current_score: float | None = None
    suggestions: list[Suggestion] | None = None
    candidates_scored: int | None = None


class _Batch(_Answer, frozen=True):
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


class ScanoptClient:
    """A typed, retrying client for one scanopt server (thread-safe, like httpx.Client)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 1.0,
        connect_timeout_s: float = 0.5,
        retries: int = 2,
        backoff_s: float = 0.05,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            transport=transport,
            headers={"content-type": "application/json"},
        )
        self._retries = retries
        self._backoff_s = backoff_s
        self._encoder = msgspec.json.Encoder()

    def __enter__(self) -> ScanoptClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- calls -------------------------------------------------------------------------------

    def predict(self, scan: Scan) -> Answer:
        """The decision for the scan's user and, when ML is on for them, the prediction."""
        return self._post("/v1/predict", scan, Answer, idempotent=False)

    def predict_batch(self, scans: list[Scan]) -> list[Answer]:
        """One answer per scan, in order."""
        batch = self._post("/v1/predict/batch", {"scans": scans}, _Batch, idempotent=False)
        return batch.predictions

    def recommend(
        self, scan: Scan, *, min_results: int = 5, max_results: int = 100, limit: int = 3
    ) -> RecommendAnswer:
        """Suggestions that land the scan in [min_results, max_results] (treatment users)."""
        body = {"scan": scan, "min_results": min_results, "max_results": max_results}
        return self._post(
            "/v1/recommend", body | {"limit": limit}, RecommendAnswer, idempotent=False
        )

    def send_event(self, event: Event) -> Ack:
        """Record one event; safe to call again with the same event (same event_id)."""
        return self._post("/v1/events", event, Ack, idempotent=True)

    def scan_started(self, scan: Scan, answer: Answer | None = None, **fields: Any) -> Ack:
        """The scanner started running `scan` (answer: what /v1/predict said, if asked)."""
        return self.send_event(ScanStarted(**_event_fields(scan, answer, fields)))

    def first_result(
        self, scan: Scan, answer: Answer | None = None, *, elapsed_s: float | None = None
    ) -> Ack:
        """The first result appeared `elapsed_s` after the scan started."""
        fields = _event_fields(scan, answer, {"elapsed_s": elapsed_s})
        return self.send_event(FirstResult(**fields))

    def scan_completed(
        self,
        scan: Scan,
        answer: Answer | None = None,
        *,
        result_count: int,
        duration_s: float,
        **fields: Any,
    ) -> Ack:
        """The scan finished with `result_count` results after `duration_s` seconds; also
        `suggestion_shown`, `suggestion_applied`, `desired_min`, `desired_max`."""
        fields |= {"result_count": result_count, "duration_s": duration_s}
        return self.send_event(ScanCompleted(**_event_fields(scan, answer, fields)))

    def feedback(
        self,
        prediction_id: str,
        *,
        satisfaction: int,
        usefulness: int,
        suggestion: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
    ) -> Ack:
        """Rate a prediction's scan (1-5 twice) with an optional suggestion (<= 2,000 chars)."""
        rating = Feedback(
            prediction_id=prediction_id,
            satisfaction=satisfaction,
            usefulness=usefulness,
            suggestion=suggestion,
            user_id=user_id,
            session_id=session_id,
        )
        return self._post("/v1/feedback", rating, Ack, idempotent=True)

    # -- transport ---------------------------------------------------------------------------

    def _post(self, path: str, body: object, answer: type[T], *, idempotent: bool) -> T:
        content = self._encoder.encode(body)
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = self._http.post(path, content=content)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if last:
                    raise ScanoptError(
                        f"POST {path}: {exc}", status=None, kind="unreachable"
                    ) from exc
                time.sleep(self._delay(attempt, None))
                continue
            except httpx.TransportError as exc:
                # Sent, maybe processed: only an idempotent call may be sent again.
                if last or not idempotent:
                    raise ScanoptError(
                        f"POST {path}: {exc!r}", status=None, kind="transport"
                    ) from exc
                time.sleep(self._delay(attempt, None))
                continue
            if response.status_code in _RETRY_STATUSES and not last:
                time.sleep(self._delay(attempt, response.headers.get("retry-after")))
                continue
            return _decode(path, response, answer)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self._backoff_s * 2.0**attempt * random.uniform(0.5, 1.5)
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                delay = max(delay, float(retry_after))
        return min(delay, _MAX_BACKOFF_S)


def _event_fields(scan: Scan, answer: Answer | None, extra: dict[str, Any]) -> dict[str, Any]:
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


def _decode(path: str, response: httpx.Response, answer: type[T]) -> T:
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
