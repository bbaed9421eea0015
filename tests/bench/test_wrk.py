"""The wrk runner: its Lua script, its output parsing, and failed runs failing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bench.openloop import LoadRunError
from bench.servers import free_port
from bench.wrk import WRK_MARKER, lua_script, parse_wrk_output, run_wrk
from tests.bench.tiny_http import Reply, TinyServer

Start = Callable[[Callable[[int], Reply]], TinyServer]


def _line(**overrides: float) -> str:
    raw = {
        "requests": 1000,
        "duration_us": 2_000_000,
        "connect": 0,
        "read": 0,
        "write": 0,
        "status": 0,
        "timeout": 0,
        "p50_us": 900,
        "p90_us": 1500,
        "p99_us": 4000,
        "max_us": 9000,
        "mean_us": 1000.5,
    }
    raw.update(overrides)
    fields = ",".join(f'"{k}":{v}' for k, v in raw.items())
    return f"Running 2s test\n{WRK_MARKER}{{{fields}}}\n"


def _parse(text: str) -> object:
    return parse_wrk_output(text, url="http://x/y", threads=1, connections=16, duration_s=2)


def test_clean_output_gives_rate_and_percentiles_in_ms() -> None:
    """1,000 requests in 2 s is 500 req/s; microseconds become milliseconds."""
    result = parse_wrk_output(_line(), url="http://x/y", threads=1, connections=16, duration_s=2)
    assert result.requests_per_s == pytest.approx(500.0)
    assert result.p99_ms == pytest.approx(4.0)
    assert result.max_ms == pytest.approx(9.0)


@pytest.mark.parametrize("kind", ["connect", "read", "write", "status", "timeout"])
def test_any_error_fails_the_run(kind: str) -> None:
    """One error of any kind raises, naming the kind, and returns no figures."""
    with pytest.raises(LoadRunError, match=f"1 {kind}"):
        _parse(_line(**{kind: 1}))


def test_zero_requests_fails_the_run() -> None:
    """A run that completed nothing has nothing to report."""
    with pytest.raises(LoadRunError, match="no answers"):
        _parse(_line(requests=0))


def test_missing_result_line_fails_the_run() -> None:
    """Output without the script's JSON line (wrong script, crash) raises."""
    with pytest.raises(LoadRunError, match="no result line"):
        _parse("Running 2s test\n")


def test_script_reads_bodies_from_the_file_and_posts_to_the_path(tmp_path: Path) -> None:
    """The Lua script loads the bodies file in init() and POSTs to the given path."""
    script = lua_script("/v1/predict", tmp_path / "bodies.jsonl")
    assert f"io.lines([==[{tmp_path / 'bodies.jsonl'}]==])" in script
    assert "wrk.format('POST', [==[/v1/predict]==]" in script
    assert "function done(summary, latency, requests)" in script


def test_script_without_bodies_gets_the_path() -> None:
    """No bodies file means a plain GET of the path."""
    assert "wrk.format('GET', [==[/health/ready]==])" in lua_script("/health/ready", None)


@pytest.mark.slow
def test_wrk_against_a_live_server_counts_what_it_served(
    tiny_server: Start, tmp_path: Path
) -> None:
    """A real one-second wrk run: its request count matches what the server read, or more."""
    server = tiny_server(lambda n: Reply())
    bodies = tmp_path / "bodies.jsonl"
    bodies.write_text('{"a":1}\n{"b":2}\n')
    result = run_wrk(server.url, bodies, duration_s=1, workdir=tmp_path, connections=2)
    assert result.requests > 0
    assert len(server.served) >= result.requests


@pytest.mark.slow
def test_wrk_against_a_dead_port_fails(tmp_path: Path) -> None:
    """Nothing listening: wrk's failure becomes LoadRunError, not a figure."""
    with pytest.raises(LoadRunError, match="wrk against"):
        run_wrk(f"http://127.0.0.1:{free_port()}/x", None, duration_s=1, workdir=tmp_path)


@pytest.mark.slow
def test_wrk_seeing_server_errors_fails(tiny_server: Start, tmp_path: Path) -> None:
    """Status 500 answers during the run are errors and fail it."""
    server = tiny_server(lambda n: Reply(status=500 if n % 3 == 0 else 200))
    with pytest.raises(LoadRunError, match="status"):
        run_wrk(server.url, None, duration_s=1, workdir=tmp_path, connections=2)
