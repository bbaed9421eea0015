"""Fixtures of the harness tests: scripted tiny servers, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.bench.tiny_http import Reply, TinyServer, start_tiny_server


@pytest.fixture
def tiny_server() -> Iterator[Callable[[Callable[[int], Reply]], TinyServer]]:
    """Start tiny servers on free ports, each answering as its script says; stop them after."""
    stops: list[Callable[[], None]] = []

    def start(script: Callable[[int], Reply]) -> TinyServer:
        server, stop = start_tiny_server(script)
        stops.append(stop)
        return server

    yield start
    for stop in stops:
        stop()
