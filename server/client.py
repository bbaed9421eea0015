"""The Python client for the scanner: predict, recommend, scan events and feedback.

    from server.client import ScanoptClient, ScanoptError

    with ScanoptClient("http://127.0.0.1:8002") as scanopt:
        try:
            answer = scanopt.predict(scan)         # scan: server.domain.scan.Scan
        except ScanoptError:
            answer = None                          # run the standard flow
        ...
        scanopt.scan_completed(scan, answer, result_count=12, duration_s=3.1)

The client never breaks the scanner. `predict`, `predict_batch` and `recommend` sit on the
scan path: they time out fast (`timeout_s`, default 1 s) and raise `ScanoptError`, on which
the scanner runs its standard flow. The reporting calls (`scan_started`, `first_result`,
`scan_completed`, `feedback`) are fail-open by default: queued and sent in the background
with retries (server.client_reporting), dropped and counted when the bounded queue is full,
flushed on `close`; they never raise and `reporting` says what became of them. With
`strict=True` they are sent inline and raise `ScanoptError` instead. An outcome is reported
with or without an answer (control users and scans the service did not answer run the same
flow); feedback without an answer has nothing to rate and is counted as skipped.

`send_event` and `send_feedback` are the inline calls underneath, returning the server's
`Ack`. Retries (server.client_wire): connect failures and 503 for every call, read
timeouts and dropped connections too for the idempotent ones (events, feedback), and one
resend of a prediction whose connection was closed or reset before any of its answer
arrived (a keep-alive connection a stopping worker closed under it), never after a read
timeout. A `Scan` is checked when it is built, by the server's own rules
(server.domain.scan), so a bad value fails in the scanner with the field named instead of
coming back as a 400.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

import httpx
import msgspec

from server.client_reporting import ReportQueue
from server.client_wire import (
    RETRY_STATUSES,
    Ack,
    Answer,
    Batch,
    Change,
    Interval,
    Outcome,
    RecommendAnswer,
    Report,
    ReportStats,
    ScanoptError,
    Suggestion,
    backoff_delay,
    decode_answer,
    event_fields,
    feedback_of,
    new_event_id,
    recommend_body,
    report_path,
    resend_reason,
    transport_error,
)
from server.domain.scan import Scan
from server.store.records import Event, Feedback, FirstResult, ScanCompleted, ScanStarted

__all__ = [
    "Ack",
    "Answer",
    "Change",
    "Interval",
    "Outcome",
    "RecommendAnswer",
    "ReportStats",
    "ScanoptClient",
    "ScanoptError",
    "Suggestion",
    "new_event_id",
]

T = TypeVar("T")


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
        strict: bool = False,
        report_retries: int = 4,
        queue_size: int = 10_000,
        flush_timeout_s: float = 2.0,
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
        self._strict = strict
        self._report_retries = report_retries
        self._flush_timeout_s = flush_timeout_s
        self._encoder = msgspec.json.Encoder()
        self._reports = ReportQueue(self._deliver, capacity=queue_size)

    def __enter__(self) -> ScanoptClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def reporting(self) -> ReportStats:
        """What became of the background reporting calls so far."""
        return self._reports.stats

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until the queued reporting calls are sent or failed; False on timeout."""
        return self._reports.flush(self._flush_timeout_s if timeout_s is None else timeout_s)

    def close(self) -> None:
        """Flush the reporting queue (up to `flush_timeout_s`), then close the connections."""
        self._reports.close(self._flush_timeout_s)
        self._http.close()

    # -- the scan path: raise ScanoptError, the scanner runs its standard flow -------------

    def predict(self, scan: Scan) -> Answer:
        """The decision for the scan's user and, when ML is on for them, the prediction."""
        return self._post("/v1/predict", scan, Answer, idempotent=False, repeatable=True)

    def predict_batch(self, scans: list[Scan]) -> list[Answer]:
        """One answer per scan, in order."""
        batch = self._post(
            "/v1/predict/batch", {"scans": scans}, Batch, idempotent=False, repeatable=True
        )
        return batch.predictions

    def recommend(
        self, scan: Scan, *, min_results: int = 5, max_results: int = 100, limit: int = 3
    ) -> RecommendAnswer:
        """Suggestions that land the scan in [min_results, max_results] (treatment users)."""
        body = recommend_body(scan, min_results, max_results, limit)
        return self._post("/v1/recommend", body, RecommendAnswer, idempotent=False, repeatable=True)

    # -- reporting: fail-open by default ------------------------------------------------

    def scan_started(
        self, scan: Scan, answer: Answer | RecommendAnswer | None = None, **fields: Any
    ) -> None:
        """The scanner started running `scan` (answer: what the service said, if anything)."""
        self._report(ScanStarted(**event_fields(scan, answer, fields)))

    def first_result(
        self,
        scan: Scan,
        answer: Answer | RecommendAnswer | None = None,
        *,
        elapsed_s: float | None = None,
    ) -> None:
        """The first result appeared `elapsed_s` after the scan started."""
        self._report(FirstResult(**event_fields(scan, answer, {"elapsed_s": elapsed_s})))

    def scan_completed(
        self,
        scan: Scan,
        answer: Answer | RecommendAnswer | None = None,
        *,
        result_count: int,
        duration_s: float,
        **fields: Any,
    ) -> None:
        """The scan finished with `result_count` results after `duration_s` seconds; also
        `suggestion_shown`, `suggestion_applied`, `desired_min`, `desired_max`."""
        fields |= {"result_count": result_count, "duration_s": duration_s}
        self._report(ScanCompleted(**event_fields(scan, answer, fields)))

    def feedback(
        self,
        answer: Answer | RecommendAnswer | str | None,
        *,
        satisfaction: int,
        usefulness: int,
        suggestion: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
    ) -> None:
        """Rate the scan of a prediction (its answer or prediction_id) 1-5 twice, with an
        optional suggestion (<= 2,000 chars); without an answer it is counted as skipped."""
        rating = feedback_of(
            answer,
            satisfaction=satisfaction,
            usefulness=usefulness,
            suggestion=suggestion,
            user_id=user_id,
            session_id=session_id,
        )
        if rating is None:
            if self._strict:
                raise ScanoptError(
                    "feedback: no prediction to rate (the scan got no answer)",
                    status=None,
                    kind="no_prediction",
                    field="prediction_id",
                )
            self._reports.skipped()
            return
        self._report(rating)

    def send_event(self, event: Event) -> Ack:
        """Record one event now; safe to call again with the same event (same event_id)."""
        return self._post("/v1/events", event, Ack, idempotent=True)

    def send_feedback(self, rating: Feedback) -> Ack:
        """Record one feedback now; a repeat of the same rating is a "duplicate"."""
        return self._post("/v1/feedback", rating, Ack, idempotent=True)

    # -- transport ---------------------------------------------------------------------------

    def _report(self, report: Report) -> None:
        if self._strict:
            self._post(report_path(report), report, Ack, idempotent=True)
        else:
            self._reports.put(report)

    def _deliver(self, report: Report) -> Ack:
        return self._post(
            report_path(report), report, Ack, idempotent=True, retries=self._report_retries
        )

    def _post(
        self,
        path: str,
        body: object,
        answer: type[T],
        *,
        idempotent: bool,
        repeatable: bool = False,
        retries: int | None = None,
    ) -> T:
        content = self._encoder.encode(body)
        retries = self._retries if retries is None else retries
        for attempt in range(retries + 1):
            last = attempt == retries
            before_answer = True
            try:
                # Streamed, so an error before the answer's head is told from one in its body.
                response = self._http.send(
                    self._http.build_request("POST", path, content=content), stream=True
                )
                before_answer = False
                try:
                    response.read()
                finally:
                    response.close()
            except httpx.TransportError as exc:
                reason = resend_reason(
                    exc, idempotent=idempotent, before_answer=before_answer, repeatable=repeatable
                )
                if last or reason is None:
                    raise transport_error(path, exc) from exc
                repeatable = repeatable and reason != "unanswered"  # that resend goes once
                time.sleep(backoff_delay(self._backoff_s, attempt, None))
                continue
            if response.status_code in RETRY_STATUSES and not last:
                retry_after = response.headers.get("retry-after")
                time.sleep(backoff_delay(self._backoff_s, attempt, retry_after))
                continue
            return decode_answer(path, response, answer)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns
