"""`AsyncScanoptClient`: the scanner client for asyncio programs, with the sync one's surface.

    async with AsyncScanoptClient("http://127.0.0.1:8002") as scanopt:
        try:
            answer = await scanopt.predict(scan)
        except ScanoptError:
            answer = None                          # run the standard flow
        ...
        await scanopt.scan_completed(scan, answer, result_count=12, duration_s=3.1)

The same calls, answers, errors and retry policy as `server.client.ScanoptClient` (they
share server.client_wire, including the one resend of a prediction whose connection was
closed before any of its answer arrived), every call a coroutine. The reporting calls
are fail-open by default: they queue and return without touching the network (one task
on the running loop drains the queue, server.client_reporting); with `strict=True` they
are sent before they return and raise `ScanoptError`. `aclose` (or leaving `async with`)
flushes the queue.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import httpx
import msgspec

from server.client_reporting import AsyncReportQueue
from server.client_wire import (
    RETRY_STATUSES,
    Ack,
    Answer,
    Batch,
    RecommendAnswer,
    Report,
    ReportStats,
    ScanoptError,
    backoff_delay,
    decode_answer,
    event_fields,
    feedback_of,
    recommend_body,
    report_path,
    resend_reason,
    transport_error,
)
from server.domain.scan import Scan
from server.store.records import Event, Feedback, FirstResult, ScanCompleted, ScanStarted

__all__ = ["AsyncScanoptClient"]

T = TypeVar("T")


class AsyncScanoptClient:
    """A typed, retrying asyncio client for one scanopt server."""

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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
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
        self._reports = AsyncReportQueue(self._deliver, capacity=queue_size)

    async def __aenter__(self) -> AsyncScanoptClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    @property
    def reporting(self) -> ReportStats:
        """What became of the background reporting calls so far."""
        return self._reports.stats

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until the queued reporting calls are sent or failed; False on timeout."""
        return await self._reports.flush(self._flush_timeout_s if timeout_s is None else timeout_s)

    async def aclose(self) -> None:
        """Flush the reporting queue (up to `flush_timeout_s`), then close the connections."""
        await self._reports.close(self._flush_timeout_s)
        await self._http.aclose()

    # -- the scan path -----------------------------------------------------------------------

    async def predict(self, scan: Scan) -> Answer:
        """The decision for the scan's user and, when ML is on for them, the prediction."""
        return await self._post("/v1/predict", scan, Answer, idempotent=False, repeatable=True)

    async def predict_batch(self, scans: list[Scan]) -> list[Answer]:
        """One answer per scan, in order."""
        body = {"scans": scans}
        batch = await self._post(
            "/v1/predict/batch", body, Batch, idempotent=False, repeatable=True
        )
        return batch.predictions

    async def recommend(
        self, scan: Scan, *, min_results: int = 5, max_results: int = 100, limit: int = 3
    ) -> RecommendAnswer:
        """Suggestions that land the scan in [min_results, max_results] (treatment users)."""
        body = recommend_body(scan, min_results, max_results, limit)
        return await self._post(
            "/v1/recommend", body, RecommendAnswer, idempotent=False, repeatable=True
        )

    # -- reporting ---------------------------------------------------------------------------

    async def scan_started(
        self, scan: Scan, answer: Answer | RecommendAnswer | None = None, **fields: Any
    ) -> None:
        """The scanner started running `scan` (answer: what the service said, if anything)."""
        await self._report(ScanStarted(**event_fields(scan, answer, fields)))

    async def first_result(
        self,
        scan: Scan,
        answer: Answer | RecommendAnswer | None = None,
        *,
        elapsed_s: float | None = None,
    ) -> None:
        """The first result appeared `elapsed_s` after the scan started."""
        await self._report(FirstResult(**event_fields(scan, answer, {"elapsed_s": elapsed_s})))

    async def scan_completed(
        self,
        scan: Scan,
        answer: Answer | RecommendAnswer | None = None,
        *,
        result_count: int,
        duration_s: float,
        **fields: Any,
    ) -> None:
        """The scan finished with `result_count` results after `duration_s` seconds."""
        fields |= {"result_count": result_count, "duration_s": duration_s}
        await self._report(ScanCompleted(**event_fields(scan, answer, fields)))

    async def feedback(
        self,
        answer: Answer | RecommendAnswer | str | None,
        *,
        satisfaction: int,
        usefulness: int,
        suggestion: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
    ) -> None:
        """Rate the scan of a prediction 1-5 twice; without an answer, counted as skipped."""
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
        await self._report(rating)

    async def send_event(self, event: Event) -> Ack:
        """Record one event now; safe to call again with the same event (same event_id)."""
        return await self._post("/v1/events", event, Ack, idempotent=True)

    async def send_feedback(self, rating: Feedback) -> Ack:
        """Record one feedback now; a repeat of the same rating is a "duplicate"."""
        return await self._post("/v1/feedback", rating, Ack, idempotent=True)

    # -- transport ---------------------------------------------------------------------------

    async def _report(self, report: Report) -> None:
        # Fail-open: queued, never awaited on the network. Strict: sent now, raising.
        if self._strict:
            await self._post(report_path(report), report, Ack, idempotent=True)
        else:
            self._reports.put(report)

    async def _deliver(self, report: Report) -> Ack:
        return await self._post(
            report_path(report), report, Ack, idempotent=True, retries=self._report_retries
        )

    async def _post(
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
                response = await self._http.send(
                    self._http.build_request("POST", path, content=content), stream=True
                )
                before_answer = False
                try:
                    await response.aread()
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                reason = resend_reason(
                    exc, idempotent=idempotent, before_answer=before_answer, repeatable=repeatable
                )
                if last or reason is None:
                    raise transport_error(path, exc) from exc
                repeatable = repeatable and reason != "unanswered"  # that resend goes once
                await asyncio.sleep(backoff_delay(self._backoff_s, attempt, None))
                continue
            if response.status_code in RETRY_STATUSES and not last:
                retry_after = response.headers.get("retry-after")
                await asyncio.sleep(backoff_delay(self._backoff_s, attempt, retry_after))
                continue
            return decode_answer(path, response, answer)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns
