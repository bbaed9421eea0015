"""A tiny keep-alive HTTP/1.1 server in a thread, scripted per request, for the harness tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import msgspec

__all__ = ["Reply", "TinyServer", "start_tiny_server"]


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """How the tiny server answers one request."""

    status: int = 200
    # Blocks the server's whole event loop, like a collector pause or a CPU-bound handler.
    stall_s: float = 0.0
    close: bool = False
    chunked: bool = False


class TinyServer(msgspec.Struct, kw_only=True):
    """The running server: its port and how many requests it has read."""

    port: int
    served: list[int] = msgspec.field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/predict"


async def _handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    script: Callable[[int], Reply],
    server: TinyServer,
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            n = len(server.served)
            server.served.append(n)
            reply = script(n)
            if reply.stall_s:
                time.sleep(reply.stall_s)
            if reply.close:
                writer.close()
                return
            body = b'{"ok":true}'
            if reply.chunked:
                payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
                framing = b"Transfer-Encoding: chunked\r\n"
            else:
                payload = body
                framing = b"Content-Length: %d\r\n" % len(body)
            writer.write(b"HTTP/1.1 %d X\r\n%s\r\n%s" % (reply.status, framing, payload))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def start_tiny_server(script: Callable[[int], Reply]) -> tuple[TinyServer, Callable[[], None]]:
    """Start a server answering as `script` says on a free port; return it and its stop."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, TinyServer] = {}
    stop_event = asyncio.Event()

    async def serve() -> None:
        srv = await asyncio.start_server(
            lambda r, w: _handle(r, w, script, holder["server"]), "127.0.0.1", 0
        )
        holder["server"] = TinyServer(port=srv.sockets[0].getsockname()[1])
        ready.set()
        async with srv:
            await stop_event.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    if not ready.wait(5):
        raise RuntimeError("the tiny server did not start within 5 s")

    def stop() -> None:
        loop.call_soon_threadsafe(stop_event.set)
        thread.join(5)

    return holder["server"], stop
