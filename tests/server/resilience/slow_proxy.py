"""A TCP proxy that holds every chunk the database sends back for `delay_s`.

A slow store as the service sees it: each round trip to PostgreSQL (connect, BEGIN, each
statement, COMMIT) costs `delay_s` more. The delay can be changed while connections are
open; 0 forwards at once.
"""

from __future__ import annotations

import contextlib
import socket
import time

from tests.server.store.tcp_proxy import TcpProxy

__all__ = ["SlowProxy"]


class SlowProxy(TcpProxy):
    """`TcpProxy` with `delay_s` added to every answer from the target."""

    delay_s: float = 0.0

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:  # type: ignore[override]
        from_target = source.getpeername()[1] == self.target[1]
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if from_target and self.delay_s > 0:
                    time.sleep(self.delay_s)
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
