"""The scanner's Python client: typed answers, timeouts, retries that never double count."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest

from server.client import Answer, ReportStats, ScanoptClient, ScanoptError
from server.domain.scan import Scan
from server.store.records import Feedback
from tests.server.conftest import SCAN, TOKEN
from tests.server.granian_process import one_worker_server
from tests.server.scripted_server import Action, ScriptedServer

PREDICTION_ID = "a" * 40
ANSWER = {"prediction_id": PREDICTION_ID, "arm": "control", "ml_enabled": False}


def scan(user: str = "u-1") -> Scan:
    return msgspec.convert({**SCAN, "user_id": user}, Scan, from_attributes=False)


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> ScanoptClient:
    kw.setdefault("backoff_s", 0.001)
    return ScanoptClient("http://scanopt.test", transport=httpx.MockTransport(handler), **kw)


class Script:
    """A fake server answering from a list of steps (a response, or an error to raise)."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.content)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def test_connect_errors_and_503_are_retried() -> None:
    """A refused connection and a 503 are retried; the third attempt's answer is returned."""
    script = Script(
        httpx.ConnectError("refused"),
        httpx.Response(503, json={"error": "store down"}, headers={"retry-after": "0"}),
        httpx.Response(200, json=ANSWER),
    )
    with mock_client(script, retries=2) as client:
        answer = client.predict(scan())
    assert answer == Answer(prediction_id=PREDICTION_ID, arm="control", ml_enabled=False)
    assert len(script.bodies) == 3


def test_giving_up_says_why() -> None:
    """When every attempt fails to connect, ScanoptError says the server is unreachable."""
    script = Script(*[httpx.ConnectError("refused")] * 3)
    with mock_client(script, retries=2) as client, pytest.raises(ScanoptError) as caught:
        client.predict(scan())
    assert (caught.value.status, caught.value.kind) == (None, "unreachable")


def test_events_are_resent_with_the_same_event_id() -> None:
    """An event whose answer was lost is sent again, byte for byte: the same event_id."""
    script = Script(
        httpx.ReadTimeout("lost"),
        httpx.Response(200, json={"id": "x", "status": "duplicate"}),
    )
    with mock_client(script, strict=True) as client:
        client.scan_completed(scan(), result_count=3, duration_s=1.2)
    assert script.bodies[0] == script.bodies[1]
    sent = msgspec.json.decode(script.bodies[0])
    assert (sent["type"], sent["result_count"], len(sent["event_id"])) == ("scan_completed", 3, 32)


CLOSED = "Server disconnected without sending a response."  # httpcore's words
BATCH = {"predictions": [ANSWER]}
RECOMMENDED = {"prediction_id": PREDICTION_ID, "arm": "control", "ml_enabled": False}
# The three prediction calls, each with an answer its fake server returns.
PREDICTIONS: dict[str, tuple[Callable[[ScanoptClient], object], dict[str, Any]]] = {
    "predict": (lambda c: c.predict(scan()), ANSWER),
    "predict_batch": (lambda c: c.predict_batch([scan()]), BATCH),
    "recommend": (lambda c: c.recommend(scan()), RECOMMENDED),
}


class BrokenBody(httpx.SyncByteStream):
    """An answer whose head arrived and whose body breaks off."""

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"prediction_id": '
        raise httpx.ReadError("Connection reset by peer")


def test_a_keep_alive_connection_closed_under_a_call_resends_it() -> None:
    """A worker closing its keep-alive connection as a call goes out (a SIGHUP or a
    deploy): events and feedback are sent again, and so is a prediction, once."""
    ack = httpx.Response(201, json={"id": "x", "status": "created"})
    closed = httpx.RemoteProtocolError(CLOSED)
    script = Script(closed, ack, closed, ack, closed, httpx.Response(200, json=ANSWER))
    rating = Feedback(prediction_id=PREDICTION_ID, satisfaction=4, usefulness=4)
    with mock_client(script, strict=True) as client:
        client.scan_completed(scan(), result_count=3, duration_s=1.2)
        client.send_feedback(rating)
        assert client.predict(scan()).prediction_id == PREDICTION_ID
    assert len(script.bodies) == 6  # each call twice
    assert script.bodies[4] == script.bodies[5]  # the same scan


@pytest.mark.parametrize("call", sorted(PREDICTIONS))
@pytest.mark.parametrize(
    "unanswered",
    [
        httpx.RemoteProtocolError(CLOSED),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
        httpx.WriteError("[Errno 32] Broken pipe"),
    ],
    ids=["closed", "reset", "broken_pipe"],
)
def test_a_prediction_whose_connection_closed_unanswered_is_resent_once(
    call: str, unanswered: Exception
) -> None:
    """Each prediction call is resent once after its connection was closed or reset
    before any of the answer arrived; a second such failure is final, retries left or not."""
    send, answer = PREDICTIONS[call]
    script = Script(unanswered, httpx.Response(200, json=answer))
    with mock_client(script, retries=5) as client:
        send(client)
    assert len(script.bodies) == 2
    script = Script(unanswered, unanswered, httpx.Response(200, json=answer))
    with mock_client(script, retries=5) as client, pytest.raises(ScanoptError) as caught:
        send(client)
    assert (caught.value.status, caught.value.kind) == (None, "transport")
    assert len(script.bodies) == 2


def test_a_refused_connection_still_takes_every_retry_after_the_one_resend() -> None:
    """The one resend for an unanswered prediction is not taken from the connect retries."""
    refused = httpx.ConnectError("refused")
    script = Script(
        httpx.RemoteProtocolError(CLOSED), refused, refused, httpx.Response(200, json=ANSWER)
    )
    with mock_client(script, retries=3) as client:
        client.predict(scan())
    assert len(script.bodies) == 4


@pytest.mark.parametrize(
    "step",
    [
        httpx.ReadTimeout("slow"),
        httpx.Response(200, stream=BrokenBody()),
        httpx.RemoteProtocolError("illegal status line: bytearray(b'garbage')"),
    ],
    ids=["read_timeout", "body_cut", "garbled_head"],
)
def test_a_prediction_that_may_be_answering_is_not_resent(step: Exception | httpx.Response) -> None:
    """No resend once the server may be computing (a read timeout) or has begun to answer
    (the body cut off, a head it garbled): only a connection closed before any answer."""
    script = Script(step, httpx.Response(200, json=ANSWER))
    with mock_client(script, retries=5) as client, pytest.raises(ScanoptError) as caught:
        client.predict(scan())
    assert caught.value.status is None
    assert len(script.bodies) == 1


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_real_keep_alive_connection_closed_under_a_prediction_is_resent(how: Action) -> None:
    """Over real sockets: the second prediction goes out on the kept-alive connection and
    the server closes (or resets) it without a byte; the client resends it on a new one."""
    body = msgspec.json.encode(ANSWER)
    with ScriptedServer(["answer", how, "answer"], body) as server:
        with ScanoptClient(server.url, backoff_s=0.001) as client:
            client.predict(scan())
            assert client.predict(scan()).prediction_id == PREDICTION_ID
        assert (server.requests, server.connections) == (3, 2)


def test_a_real_connection_closed_twice_or_stalled_is_not_resent_again() -> None:
    """Over real sockets: a second close fails the prediction (one resend), and a server
    that read the prediction and stays silent is not sent it again after the timeout."""
    body = msgspec.json.encode(ANSWER)
    with ScriptedServer(["close", "close", "answer"], body) as server:
        with ScanoptClient(server.url, backoff_s=0.001) as client, pytest.raises(ScanoptError):
            client.predict(scan())
        assert server.requests == 2
    with ScriptedServer(["stall", "answer"], body) as server:
        with (
            ScanoptClient(server.url, timeout_s=0.2) as client,
            pytest.raises(ScanoptError, match="ReadTimeout"),
        ):
            client.predict(scan())
        assert server.requests == 1


def test_client_errors_are_not_retried_and_carry_the_field() -> None:
    """A 4xx is final: ScanoptError has the status, kind and field from the server."""
    body = {"error": "satisfaction: Expected `int` <= 5", "kind": "bad_input", "field": "x"}
    script = Script(httpx.Response(400, json=body))
    with mock_client(script, strict=True) as client, pytest.raises(ScanoptError) as caught:
        client.feedback(PREDICTION_ID, satisfaction=9, usefulness=1)
    assert (caught.value.status, caught.value.kind, caught.value.field) == (400, "bad_input", "x")
    assert len(script.bodies) == 1


def test_unknown_answer_fields_are_ignored() -> None:
    """A newer server adding fields does not break this client."""
    script = Script(httpx.Response(200, json={**ANSWER, "explanation": {"top": "rsi"}}))
    with mock_client(script) as client:
        assert client.predict(scan()).arm == "control"


def test_events_carry_the_answer_they_follow() -> None:
    """scan_started after a prediction names its prediction_id and arm."""
    script = Script(httpx.Response(201, json={"id": "e", "status": "created"}))
    answer = Answer(prediction_id=PREDICTION_ID, arm="treatment", ml_enabled=True)
    with mock_client(script) as client:
        client.scan_started(scan(), answer)
        assert client.flush(5.0)
    sent = msgspec.json.decode(script.bodies[0])
    assert (sent["prediction_id"], sent["arm"], sent["user_id"]) == (
        PREDICTION_ID,
        "treatment",
        "u-1",
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, built_versions: Any) -> Iterator[str]:
    """One real server (Granian, one worker, SQLite) for the end-to-end client flow."""
    home = tmp_path_factory.mktemp("client-server")
    with one_worker_server(home, built_versions.root, built_versions.first, TOKEN) as url:
        yield url


@pytest.mark.slow
def test_end_to_end_scanner_flow(server: str) -> None:
    """Predict, recommend, the three events and feedback against a real server, for both
    arms; a repeated event is acknowledged as a duplicate."""
    with ScanoptClient(server) as client:
        for user, arm in (("u-1", "treatment"), ("u-2", "control")):
            answer = client.predict(scan(user))
            assert (answer.arm, answer.ml_enabled) == (arm, arm == "treatment")
            assert (answer.result_count is not None) == (arm == "treatment")
            client.scan_started(scan(user), answer)
            client.first_result(scan(user), answer, elapsed_s=0.3)
            client.scan_completed(
                scan(user), answer, result_count=0, duration_s=2.5, suggestion_shown=False
            )
            rating = Feedback(prediction_id=answer.prediction_id, satisfaction=3, usefulness=4)
            assert client.send_feedback(rating).status == "created"
            assert client.send_feedback(rating).status == "duplicate"
        assert client.flush(10.0)
        assert client.reporting == ReportStats(queued=6, sent=6)
        recommended = client.recommend(scan("u-1"), limit=2)
        assert recommended.ml_enabled
        assert recommended.suggestions is not None
        assert [a.arm for a in client.predict_batch([scan("u-1"), scan("u-2")])] == [
            "treatment",
            "control",
        ]
        with pytest.raises(ScanoptError) as caught:
            client.send_feedback(Feedback(prediction_id="f" * 40, satisfaction=3, usefulness=4))
        assert (caught.value.status, caught.value.field) == (404, "prediction_id")


def test_unreachable_server_fails_fast() -> None:
    """Nothing listening: the client gives up after its retries with kind "unreachable"."""
    client = ScanoptClient("http://127.0.0.1:9", retries=1, backoff_s=0.001)
    with client, pytest.raises(ScanoptError) as caught:
        client.predict(scan())
    assert caught.value.kind == "unreachable"


def test_reporting_never_raises_when_the_server_is_down() -> None:
    """Fail-open: events and feedback against a dead server return, and are counted failed
    after their retries, each retry the same bytes."""
    script = Script(*[httpx.ConnectError("refused")] * 6)
    with mock_client(script, report_retries=2) as client:
        client.scan_started(scan())
        client.feedback(PREDICTION_ID, satisfaction=3, usefulness=4)
        assert client.flush(5.0)
        assert client.reporting == ReportStats(queued=2, failed=2)
    assert script.bodies[0] == script.bodies[1] == script.bodies[2]
    assert len(script.bodies) == 6


def test_a_full_queue_drops_and_counts() -> None:
    """With the sender stuck, calls beyond the queue's capacity are dropped and counted,
    and close gives up after its flush timeout, counting what is left."""
    release = threading.Event()

    def stuck(request: httpx.Request) -> httpx.Response:
        release.wait(5.0)
        return httpx.Response(201, json={"id": "e", "status": "created"})

    client = mock_client(stuck, queue_size=2, flush_timeout_s=0.2)
    client.scan_started(scan())  # taken by the sender, which blocks
    time.sleep(0.3)
    for _ in range(4):
        client.scan_started(scan())
    assert client.reporting.dropped == 2
    client.close()
    release.set()
    stats = client.reporting
    assert (stats.queued, stats.dropped) == (3, 4)  # 2 full + 2 left at close


def test_close_flushes_the_queue() -> None:
    """Every queued call is delivered before close returns."""
    script = Script(*[httpx.Response(201, json={"id": "e", "status": "created"})] * 20)
    with mock_client(script) as client:
        for _ in range(20):
            client.scan_completed(scan(), result_count=1, duration_s=0.5)
    assert client.reporting == ReportStats(queued=20, sent=20)
    assert len(script.bodies) == 20


def test_strict_mode_raises_on_reporting() -> None:
    """strict=True sends inline and raises what the server said."""
    script = Script(httpx.Response(404, json={"error": "unknown", "kind": "not_found"}))
    with mock_client(script, strict=True) as client, pytest.raises(ScanoptError) as caught:
        client.scan_started(scan(), Answer(prediction_id="b" * 40, arm=None, ml_enabled=False))
    assert caught.value.status == 404


def test_an_outcome_without_an_answer_is_still_reported() -> None:
    """No answer (the service failed): the events go out unlinked; feedback is skipped."""
    script = Script(*[httpx.Response(201, json={"id": "e", "status": "created"})] * 2)
    with mock_client(script) as client:
        client.scan_started(scan(), None)
        client.scan_completed(scan(), None, result_count=4, duration_s=1.0)
        client.feedback(None, satisfaction=4, usefulness=4)
    assert client.reporting == ReportStats(queued=2, sent=2, skipped=1)
    assert all("prediction_id" not in msgspec.json.decode(b) for b in script.bodies)
    with (
        mock_client(Script(), strict=True) as strict,
        pytest.raises(ScanoptError, match="no prediction"),
    ):
        strict.feedback(None, satisfaction=4, usefulness=4)
