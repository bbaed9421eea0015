"""A bounded closed-loop load that records every request's fate, for the fault tests.

`Load(url, clients=4)` runs one thread per client, each with its own keep-alive
connection, cycling through `kinds` (`predict`, `event`, `feedback`) with a short pause
between requests, so the rate stays bounded on a shared machine. Each client is its own
user; an event (`scan_completed`, a fresh `event_id`) and a feedback refer to that
client's latest prediction, so they join it in the store as a scanner's would. Every
call becomes an `Outcome`: when it started and ended (monotonic seconds), the status or
the transport error, and the `prediction_id` it answered or referred to.

How a call is sent is the `policy`:

- `"once"`: every request goes once over plain httpx, and every failure counts, 503s
  included (their body and `Retry-After` are kept in the outcome).
- `"client"`: every call goes through the scanner's documented client
  (`server.client.ScanoptClient`, strict), so its retry policy decides what is resent:
  a refused connection and a 503 for every call, a dropped connection or a read timeout
  for events and feedback (idempotent by id), and a prediction once when its connection
  was closed or reset before any of the answer arrived; anything else fails, as the
  scanner would see it. `resent` counts the extra attempts, `dropped` the attempts that
  got no answer at all, and `resent_by_kind` / `dropped_by_kind` split them by call.

A fault test then counts what failed, how many requests were in flight when the fault
hit, and which writes the server acknowledged, to compare with the rows in the store.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec

from server.client import ScanoptClient
from server.client_wire import ScanoptError
from server.domain.scan import Scan
from server.store.records import Feedback, ScanCompleted
from tests.server.conftest import SCAN

__all__ = ["KINDS", "Load", "Outcome", "event_body", "feedback_body", "stored_event_ids"]

KINDS = ("predict", "event", "feedback")
_PATH = {"predict": "/v1/predict", "event": "/v1/events", "feedback": "/v1/feedback"}
_KIND_OF_PATH = {path: kind for kind, path in _PATH.items()}
Policy = Literal["once", "client"]


class Outcome(msgspec.Struct, frozen=True):
    """One call: what it was, when it ran, and how it ended."""

    kind: str  # "predict", "event" or "feedback"
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (connection refused, reset, timeout)
    error: str = ""
    event_id: str = ""
    prediction_id: str = ""  # answered (predict) or referred to (event, feedback)
    retry_after: str | None = None
    error_kind: str = ""  # the `kind` of the server's error body
    body: dict[str, Any] | None = None  # what an event or feedback sent, to resend it
    arm: str | None = None  # a prediction's answer: an arm when the model ran for it
    client: int = 0  # which of the load's clients sent it (each has its own connection)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def event_body(event_id: str, prediction_id: str | None = None) -> dict[str, Any]:
    """A valid scan_completed event a minute old (the server refuses future times)."""
    body: dict[str, Any] = {
        "type": "scan_completed",
        "event_id": event_id,
        "user_id": "u-load",
        "session_id": "s-load",
        "timestamp": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "arm": "treatment",
        "result_count": 12,
        "duration_s": 3.5,
    }
    if prediction_id is not None:
        body["prediction_id"] = prediction_id
    return body


def feedback_body(prediction_id: str) -> dict[str, Any]:
    """A rating of one prediction (the same body each time: a resend is a duplicate)."""
    return {"prediction_id": prediction_id, "satisfaction": 4, "usefulness": 3}


class _Sent(msgspec.Struct, frozen=True):
    """What one call got: the status (None: no answer) and what the answer said."""

    status: int | None
    error: str = ""
    prediction_id: str = ""  # a prediction's answer
    arm: str | None = None  # a prediction's answer
    retry_after: str | None = None
    error_kind: str = ""


class _Counting(httpx.HTTPTransport):
    """Counts every attempt the client makes and those that got no answer."""

    def __init__(self, load: Load, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._load = load

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        kind = _KIND_OF_PATH[request.url.path]
        with self._load._lock:
            self._load.attempts += 1
            self._load.attempts_by_kind[kind] += 1
        try:
            return super().handle_request(request)
        except httpx.TransportError:
            with self._load._lock:
                self._load.dropped += 1
                self._load.dropped_by_kind[kind] += 1
            raise


class Load:
    """`clients` threads calling `url` until `stop()`; outcomes in `outcomes`."""

    def __init__(
        self,
        url: str,
        *,
        clients: int = 4,
        pause_s: float = 0.002,
        timeout_s: float = 10.0,
        kinds: Iterable[str] = ("predict", "event"),
        policy: Policy = "once",
    ) -> None:
        self.url = url
        self.pause_s = pause_s
        self.timeout_s = timeout_s
        self.kinds = tuple(kinds)
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"kinds {sorted(unknown)}: expected some of {KINDS}")
        self.policy = policy
        self.outcomes: list[Outcome] = []
        self.calls = 0  # calls made (under "client", each may take several attempts)
        self.attempts = 0  # HTTP attempts under "client"
        self.dropped = 0  # attempts under "client" that got no answer
        self.calls_by_kind: Counter[str] = Counter()
        self.attempts_by_kind: Counter[str] = Counter()
        self.dropped_by_kind: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(clients)
        ]

    @property
    def resent(self) -> int:
        """Attempts beyond the first of each call (the client's retries)."""
        with self._lock:
            return self.attempts - self.calls if self.policy == "client" else 0

    @property
    def resent_by_kind(self) -> dict[str, int]:
        """`resent` per kind of call."""
        with self._lock:
            if self.policy != "client":
                return {}
            return {k: self.attempts_by_kind[k] - self.calls_by_kind[k] for k in KINDS}

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=3 * self.timeout_s + 5)

    def _run(self, k: int) -> None:
        scan = {**SCAN, "user_id": f"u-load-{k}", "session_id": f"s-load-{k}"}
        if self.policy == "client":
            transport = _Counting(self)
            client = ScanoptClient(
                self.url,
                timeout_s=self.timeout_s,
                connect_timeout_s=self.timeout_s,
                strict=True,
                transport=transport,
            )
            with client:
                self._loop(k, scan, lambda kind, body: self._via_client(client, kind, body))
        else:
            with httpx.Client(base_url=self.url, timeout=self.timeout_s) as http:
                self._loop(k, scan, lambda kind, body: self._once(http, kind, body))

    def _loop(
        self, k: int, scan: dict[str, Any], send: Callable[[str, dict[str, Any]], _Sent]
    ) -> None:
        prediction_id, arm = "", None
        i = 0
        while not self._stop.is_set():
            kind = self.kinds[(i + k) % len(self.kinds)]
            i += 1
            if kind != "predict" and not prediction_id:
                kind = "predict"  # nothing to refer to yet
            event_id = f"e-{uuid.uuid4().hex}" if kind == "event" else ""
            if kind == "predict":
                body = scan
            elif kind == "event":
                body = {
                    **event_body(event_id, prediction_id),
                    "user_id": scan["user_id"],
                    "session_id": scan["session_id"],
                    "arm": arm,
                }
            else:
                body = {**feedback_body(prediction_id), "user_id": scan["user_id"]}
            started = time.monotonic()
            with self._lock:
                self.calls += 1
                self.calls_by_kind[kind] += 1
            sent = send(kind, body)
            if kind == "predict" and sent.prediction_id:
                prediction_id, arm = sent.prediction_id, sent.arm
            outcome = Outcome(
                kind,
                started,
                time.monotonic(),
                sent.status,
                sent.error,
                event_id,
                prediction_id if kind != "predict" else sent.prediction_id,
                sent.retry_after,
                sent.error_kind,
                body if kind != "predict" else None,
                sent.arm if kind == "predict" else None,
                k,
            )
            with self._lock:
                self.outcomes.append(outcome)
            time.sleep(self.pause_s)

    @staticmethod
    def _once(http: httpx.Client, kind: str, body: dict[str, Any]) -> _Sent:
        try:
            response = http.post(_PATH[kind], json=body)
        except httpx.HTTPError as exc:
            return _Sent(None, repr(exc))
        if response.is_success:
            if kind != "predict":
                return _Sent(response.status_code)
            answer = response.json()
            return _Sent(
                response.status_code,
                prediction_id=answer["prediction_id"],
                arm=answer["arm"],
            )
        try:
            error_kind = str(response.json().get("kind", ""))
        except ValueError:
            error_kind = ""
        return _Sent(
            response.status_code,
            response.text,  # whole: a PostgreSQL 503 puts "may have been stored" at its end
            retry_after=response.headers.get("retry-after"),
            error_kind=error_kind,
        )

    @staticmethod
    def _via_client(client: ScanoptClient, kind: str, body: dict[str, Any]) -> _Sent:
        try:
            if kind == "predict":
                answer = client.predict(msgspec.convert(body, Scan))
                return _Sent(
                    200,
                    prediction_id=answer.prediction_id,
                    arm=answer.arm,
                )
            if kind == "event":
                ack = client.send_event(msgspec.convert(body, ScanCompleted))
            else:
                ack = client.send_feedback(msgspec.convert(body, Feedback))
        except ScanoptError as exc:
            return _Sent(exc.status, str(exc), error_kind=exc.kind)
        return _Sent(201 if ack.status == "created" else 200)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def wait_for(self, n: int, timeout_s: float = 30.0) -> None:
        """Until at least `n` more calls have completed than now."""
        target = len(self.snapshot()) + n
        deadline = time.monotonic() + timeout_s
        while len(self.snapshot()) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {n} requests completed in {timeout_s} s")
            time.sleep(0.01)

    def failed(self) -> list[Outcome]:
        return [o for o in self.snapshot() if not o.ok]

    def in_flight_at(self, moment: float) -> int:
        """Calls started before `moment` that had not ended by it."""
        return self.in_flight_during(moment, moment)

    def in_flight_during(self, start: float, end: float) -> int:
        """Calls that were open at some point between `start` and `end`."""
        return sum(1 for o in self.snapshot() if o.started <= end and o.ended >= start)

    def acknowledged_events(self) -> set[str]:
        """Event ids the server answered 201 or 200: committed, by its contract."""
        return {o.event_id for o in self.snapshot() if o.kind == "event" and o.ok}

    def acknowledged_feedback(self) -> set[str]:
        """Prediction ids whose feedback the server answered 201 or 200."""
        return {o.prediction_id for o in self.snapshot() if o.kind == "feedback" and o.ok}

    def answered_predictions(self) -> set[str]:
        """Prediction ids of every prediction answered 200."""
        return {o.prediction_id for o in self.snapshot() if o.kind == "predict" and o.ok}

    def answered_in_experiment(self) -> set[str]:
        """Prediction ids answered 200 with an arm: the model ran for them (both arms;
        control users just do not see it)."""
        return {
            o.prediction_id
            for o in self.snapshot()
            if o.kind == "predict" and o.ok and o.arm is not None
        }


def stored_event_ids(db: Path) -> set[str]:
    """Every event_id in the SQLite store, read through a separate read-only connection."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT event_id FROM events")}
    finally:
        conn.close()
