"""The asyncio client: the sync client's surface, answers, retries and fail-open reporting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import httpx
import msgspec
import pytest

from server.client import ReportStats, ScanoptError
from server.client_async import AsyncScanoptClient
from server.domain.scan import Scan
from server.store.records import Feedback
from tests.server.conftest import SCAN, TOKEN
from tests.server.granian_process import one_worker_server
from tests.server.scripted_server import Action, ScriptedServer

CREATED = {"id": "e", "status": "created"}


def scan(user: str = "u-1") -> Scan:
    return msgspec.convert({**SCAN, "user_id": user}, Scan)


def mock_client(
    handler: Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]],
    **kw: Any,
) -> AsyncScanoptClient:
    kw.setdefault("backoff_s", 0.001)
    return AsyncScanoptClient("http://scanopt.test", transport=httpx.MockTransport(handler), **kw)


def test_predict_retries_like_the_sync_client() -> None:
    """A refused connection and a 503 are retried; the third answer is returned."""
    steps: list[httpx.Response | Exception] = [
        httpx.ConnectError("refused"),
        httpx.Response(503, json={"error": "busy"}, headers={"retry-after": "0"}),
        httpx.Response(200, json={"prediction_id": "p", "arm": None, "ml_enabled": False}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        step = steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    async def run() -> bool:
        async with mock_client(handler) as client:
            return (await client.predict(scan())).ml_enabled

    assert asyncio.run(run()) is False
    assert steps == []


class BrokenBody(httpx.AsyncByteStream):
    """An answer whose head arrived and whose body breaks off."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"prediction_id": '
        raise httpx.ReadError("Connection reset by peer")


ANSWER = {"prediction_id": "p", "arm": None, "ml_enabled": False}
CLOSED = "Server disconnected without sending a response."  # httpcore's words


@pytest.mark.parametrize(
    ("steps", "attempts", "answered"),
    [
        ([httpx.RemoteProtocolError(CLOSED)], 2, True),
        ([httpx.ReadError("[Errno 104] Connection reset by peer")], 2, True),
        ([httpx.RemoteProtocolError(CLOSED), httpx.ReadError("reset")], 2, False),
        ([httpx.ReadTimeout("slow")], 1, False),
        ([httpx.Response(200, stream=BrokenBody())], 1, False),
    ],
    ids=["closed", "reset", "closed_twice", "read_timeout", "body_cut"],
)
def test_predict_resends_once_like_the_sync_client(
    steps: list[httpx.Response | Exception], attempts: int, answered: bool
) -> None:
    """A prediction whose connection was closed or reset before any of the answer arrived
    is sent once more; never after a read timeout or once the answer began."""
    script = [*steps, httpx.Response(200, json=ANSWER)]
    sent: list[bytes] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(await request.aread())
        step = script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    async def run() -> tuple[int | None, str] | None:
        async with mock_client(handler, retries=5) as client:
            try:
                await client.predict(scan())
            except ScanoptError as exc:
                return exc.status, exc.kind
            return None

    assert asyncio.run(run()) == (None if answered else (None, "transport"))
    assert len(sent) == attempts
    assert len(set(sent)) == 1  # the same scan each time


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_real_keep_alive_connection_closed_under_a_prediction_is_resent(how: Action) -> None:
    """Over real sockets, as for the sync client: the prediction the server closed (or
    reset) its kept-alive connection under is resent on a new one; a stalled one is not."""
    body = msgspec.json.encode(ANSWER)

    async def run(url: str, timeout_s: float) -> str:
        async with AsyncScanoptClient(url, backoff_s=0.001, timeout_s=timeout_s) as client:
            await client.predict(scan())
            return (await client.predict(scan())).prediction_id

    with ScriptedServer(["answer", how, "answer"], body) as server:
        assert asyncio.run(run(server.url, 1.0)) == "p"
        assert (server.requests, server.connections) == (3, 2)
    with ScriptedServer(["answer", "stall", "answer"], body) as server:
        with pytest.raises(ScanoptError, match="ReadTimeout"):
            asyncio.run(run(server.url, 0.2))
        assert server.requests == 2


def test_reporting_is_fail_open_and_flushed_on_close() -> None:
    """Against a dead server the reporting calls return at once and end up counted failed;
    against a live one every queued call is sent before aclose returns."""

    def dead(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    sent: list[bytes] = []

    def alive(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(201, json=CREATED)

    async def run() -> tuple[ReportStats, ReportStats]:
        async with mock_client(dead, report_retries=1) as down:
            await down.scan_started(scan())
            await down.feedback("p" * 40, satisfaction=2, usefulness=2)
            await down.feedback(None, satisfaction=2, usefulness=2)
        async with mock_client(alive) as up:
            for _ in range(10):
                await up.scan_completed(scan(), None, result_count=2, duration_s=1.0)
        return down.reporting, up.reporting

    down, up = asyncio.run(run())
    assert down == ReportStats(queued=2, failed=2, skipped=1)
    assert up == ReportStats(queued=10, sent=10)
    assert len(sent) == 10


def test_a_full_queue_drops_and_counts() -> None:
    """Beyond the queue's capacity calls are dropped and counted, never awaited."""

    async def run() -> ReportStats:
        gate = asyncio.Event()

        async def slow(request: httpx.Request) -> httpx.Response:
            await gate.wait()
            return httpx.Response(201, json=CREATED)

        client = AsyncScanoptClient(
            "http://scanopt.test",
            transport=httpx.MockTransport(slow),
            queue_size=2,
            flush_timeout_s=0.1,
        )
        for _ in range(5):
            await client.scan_started(scan())
        await client.aclose()
        return client.reporting

    stats = asyncio.run(run())
    # The sender has not started before the five puts: 2 queued, 3 dropped; at close the
    # one in flight and the one still queued are dropped too.
    assert (stats.queued, stats.sent, stats.dropped) == (2, 0, 5)


def test_strict_mode_raises() -> None:
    """strict=True sends inline and raises the server's error with its field."""
    body = {"error": "satisfaction: Expected `int` <= 5", "kind": "bad_input", "field": "x"}

    async def run() -> None:
        transport = httpx.MockTransport(lambda r: httpx.Response(400, json=body))
        async with AsyncScanoptClient(
            "http://scanopt.test", transport=transport, strict=True
        ) as client:
            await client.feedback("p" * 40, satisfaction=3, usefulness=3)

    with pytest.raises(ScanoptError) as caught:
        asyncio.run(run())
    assert (caught.value.status, caught.value.field) == (400, "x")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, built_versions: Any) -> Iterator[str]:
    """One real server (Granian, one worker, SQLite)."""
    home = tmp_path_factory.mktemp("async-client-server")
    with one_worker_server(home, built_versions.root, built_versions.first, TOKEN) as url:
        yield url


@pytest.mark.slow
def test_end_to_end_against_a_real_server(server: str) -> None:
    """Predict, recommend, batch, events and feedback through a real server, asynchronously."""

    async def run() -> None:
        async with AsyncScanoptClient(server) as client:
            answer = await client.predict(scan("u-1"))
            assert answer.ml_enabled
            await client.scan_started(scan("u-1"), answer)
            await client.scan_completed(scan("u-1"), answer, result_count=3, duration_s=1.5)
            rating = Feedback(prediction_id=answer.prediction_id, satisfaction=4, usefulness=4)
            assert (await client.send_feedback(rating)).status == "created"
            recommended = await client.recommend(scan("u-1"), limit=2)
            assert recommended.suggestions is not None
            batch = await client.predict_batch([scan("u-1"), scan("u-2")])
            assert [a.arm for a in batch] == ["treatment", "control"]
            assert await client.flush(10.0)
            assert client.reporting == ReportStats(queued=2, sent=2)

    asyncio.run(run())
