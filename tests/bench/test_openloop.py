"""The open-loop generator: latency from the intended send time, and failed runs fail."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.openloop import (
    LoadRunError,
    OpenLoopConfig,
    OpenLoopResult,
    build_requests,
    main,
    record_open_loop,
    run_open_loop,
)
from bench.servers import free_port
from tests.bench.tiny_http import Reply, TinyServer

Start = Callable[[Callable[[int], Reply]], TinyServer]
BODIES = [b'{"a":1}', b'{"b":2}']


def _run(
    url: str, rate: float = 100.0, duration_s: float = 1.0, connections: int = 1
) -> OpenLoopResult:
    cfg = OpenLoopConfig(url=url, rate=rate, duration_s=duration_s, connections=connections)
    return asyncio.run(run_open_loop(cfg, BODIES))


def test_stall_is_charged_to_every_request_scheduled_during_it(tiny_server: Start) -> None:
    """A 300 ms server stall shows in p90, not only in the one request that hit it."""
    server = tiny_server(lambda n: Reply(stall_s=0.3 if n == 40 else 0.0))
    result = _run(server.url, rate=100.0, duration_s=1.5, connections=1)
    assert result.requests == 150
    # ~30 requests were due during the stall and waited behind it on the one connection:
    # measured from when they were sent they would look instant, so p90 would be tiny.
    assert result.latency.p90_ms > 100.0
    assert result.latency.max_ms >= 290.0


def test_no_stall_gives_low_percentiles(tiny_server: Start) -> None:
    """Without a stall the same run's p90 stays far below the stall test's (the control)."""
    server = tiny_server(lambda n: Reply())
    result = _run(server.url, rate=100.0, duration_s=1.5, connections=1)
    assert result.latency.p90_ms < 100.0
    assert result.latency.count == 150


def test_every_request_is_sent_and_answered(tiny_server: Start) -> None:
    """rate x duration requests reach the server, each read whole (length or chunked)."""
    server = tiny_server(lambda n: Reply(chunked=n % 2 == 0))
    result = _run(server.url, rate=200.0, duration_s=0.5, connections=4)
    assert result.requests == 100
    assert len(server.served) == 100


def test_dead_port_fails_without_figures() -> None:
    """Nothing listening: the run raises, naming the url, instead of returning figures."""
    url = f"http://127.0.0.1:{free_port()}/v1/predict"
    with pytest.raises(LoadRunError, match="cannot reach"):
        _run(url)


def test_non_2xx_answer_fails_the_run(tiny_server: Start) -> None:
    """One 500 among many 200s fails the whole run and says which status it saw."""
    server = tiny_server(lambda n: Reply(status=500 if n == 10 else 200))
    with pytest.raises(LoadRunError, match=r"1 non-2xx answers \(first status 500\)"):
        _run(server.url, rate=100.0, duration_s=0.5)


def test_dropped_connection_fails_the_run(tiny_server: Start) -> None:
    """A server that hangs up mid-run is a transport error, and the run fails."""
    server = tiny_server(lambda n: Reply(close=n == 5))
    with pytest.raises(LoadRunError, match="transport errors"):
        _run(server.url, rate=100.0, duration_s=0.5)


def test_cli_writes_no_result_for_a_failed_run(tmp_path: Path) -> None:
    """The CLI exits 1 against a dead port and leaves no result file behind."""
    out = tmp_path / "open.json"
    code = main([f"http://127.0.0.1:{free_port()}/x", "--duration", "0.2", "--out", str(out)])
    assert code == 1
    assert not out.exists()


def test_cli_writes_the_result_of_a_clean_run(tiny_server: Start, tmp_path: Path) -> None:
    """A clean CLI run writes JSON with the requested rate and request count."""
    server = tiny_server(lambda n: Reply())
    bodies = tmp_path / "bodies.jsonl"
    bodies.write_bytes(b'{"a":1}\n\n{"b":2}\n')
    out = tmp_path / "open.json"
    args = [server.url, "--bodies", str(bodies), "--rate", "50", "--duration", "0.4"]
    assert main([*args, "--connections", "2", "--out", str(out)]) == 0
    text = out.read_text()
    assert '"target_rate":50.0' in text
    assert '"requests":20' in text


def test_requests_are_keep_alive_posts_with_exact_lengths() -> None:
    """Each body becomes one POST with its Content-Length and the url's path and host."""
    raw = build_requests("http://127.0.0.1:8002/v1/predict?x=1", [b'{"a":1}'])
    assert raw[0].startswith(b"POST /v1/predict?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8002\r\n")
    assert raw[0].endswith(b'Content-Length: 7\r\n\r\n{"a":1}')


def test_non_http_url_is_refused() -> None:
    """An https or host-less url is a ValueError naming it."""
    with pytest.raises(ValueError, match="https://x"):
        build_requests("https://x/y", BODIES)


def test_bad_rate_is_refused() -> None:
    """A zero rate is refused before any connection is opened."""
    with pytest.raises(ValueError, match="rate=0"):
        _run("http://127.0.0.1:1/x", rate=0.0)


def test_record_open_loop_keeps_each_answer_body(tiny_server: Start) -> None:
    """With keep_bodies, each request's status and body (length-framed or chunked) are kept."""
    server = tiny_server(lambda n: Reply(chunked=n % 2 == 1, status=503 if n == 3 else 200))
    cfg = OpenLoopConfig(url=server.url, rate=200.0, duration_s=0.05, connections=1)
    rec = asyncio.run(record_open_loop(cfg, BODIES, keep_bodies=True))
    assert rec.status == [200, 200, 200, 503, 200, 200, 200, 200, 200, 200]
    assert rec.bodies == [b'{"ok":true}'] * 10
    assert all(rec.latency(i) > 0 for i in range(10))
