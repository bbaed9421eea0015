"""A real HTTP/1.1 socket server that answers, closes or resets, request by request.

The clients' resend rule hangs on what httpcore raises when a real connection closes
under a request, so the tests drive real sockets rather than a mock transport:

- `"answer"`: a 200 with `body`, the connection kept alive;
- `"close"`: read the request, then close the connection without a byte (FIN), as a
  stopping worker closes an idle keep-alive connection the client had just reused;
- `"reset"`: read the request, then reset the connection (RST: SO_LINGER 0), as the
  kernel does for a connection queued on a listener that closed;
- `"stall"`: read the request and answer nothing until the client gives up.

`requests` counts the requests read, `connections` the connections accepted.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Literal

__all__ = ["Action", "ScriptedServer"]

Action = Literal["answer", "close", "reset", "stall"]


class ScriptedServer:
    """Serves one action per request, in order, on 127.0.0.1 (a context manager)."""

    def __init__(self, actions: list[Action], body: bytes) -> None:
        self._actions = list(actions)
        self._body = body
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so the serving thread sees `_stop` soon
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests = 0
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        # One connection at a time: the clients under test send one request at a time.
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.settimeout(None)
            with conn:
                self._converse(conn)

    def _converse(self, conn: socket.socket) -> None:
        buffered = b""
        while self._actions:
            request, buffered = _read_request(conn, buffered)
            if request is None:
                return  # the client closed the connection
            self.requests += 1
            action = self._actions.pop(0)
            if action == "answer":
                head = (
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(self._body)}\r\n\r\n"
                )
                conn.sendall(head.encode() + self._body)
                continue
            if action == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif action == "stall":
                with contextlib.suppress(OSError):
                    conn.recv(1)  # until the client closes it
            return  # close (FIN), reset (RST) or stalled: this connection is done


def _read_request(conn: socket.socket, buffered: bytes) -> tuple[bytes | None, bytes]:
    """One request (head and Content-Length body) and what came after it."""
    while b"\r\n\r\n" not in buffered:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        buffered += chunk
    head, _, rest = buffered.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        rest += chunk
    return head + b"\r\n\r\n" + rest[:length], rest[length:]
