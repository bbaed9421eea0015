"""JSON-lines logging with the request id of the request being served.

`REQUEST_ID` is a context variable (set per request by the HTTP observer), so every log
line written while serving a request carries its id without passing it around. The
launcher hands `logging_config` to Granian, which applies it in every worker, so Granian's
own lines are JSON too.

Lines go through `JsonLinesHandler`, a StreamHandler that can hold lines: while a worker
serves (`hold_lines`, from its startup to its shutdown) lines below WARNING are kept in
memory and written by `write_held` (a task of the worker, every SCANOPT_LOG_FLUSH_S) in a
few writes of whole lines instead of one write and flush per line. A line at WARNING or
above is written at once, after the lines held before it, so the order never changes.
Each write is at most `PIPE_BUF` bytes of whole lines, so on a pipe shared by several
workers a write is atomic and lines never interleave. Without holding (the launcher,
tests, SCANOPT_LOG_FLUSH_S=0) every line is written and flushed as it is logged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from server import process

__all__ = [
    "LOGGER_NAME",
    "REQUEST_ID",
    "JsonFormatter",
    "JsonLinesHandler",
    "hold_lines",
    "log_fields",
    "logging_config",
    "write_held",
    "write_held_every",
]

LOGGER_NAME: Final = "scanopt"
# A context variable, not a global: each request (task) sees its own value.
REQUEST_ID: Final[ContextVar[str | None]] = ContextVar("scanopt_request_id", default=None)
_ENCODER: Final = msgspec.json.Encoder()
# A write of at most this many bytes to a pipe is atomic (POSIX PIPE_BUF on Linux).
_ATOMIC_BYTES: Final = 4096
# Held lines beyond this are written at once, whatever the interval: memory stays bounded.
_MAX_HELD: Final = 1024


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, pid, request_id, then `fields`.

    Pass structured values as ``logger.info("msg", extra={"fields": {...}})``.
    """

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        return self.line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            fields if isinstance(fields, dict) else None,
            exc=self.formatException(record.exc_info) if record.exc_info else None,
        )

    @staticmethod
    def line(
        created: float,
        level: str,
        logger: str,
        msg: str,
        fields: dict[str, Any] | None,
        exc: str | None = None,
    ) -> str:
        """The line of a record made at `created` (Unix seconds), without the record."""
        line: dict[str, Any] = {
            "ts": _timestamp(created),
            "level": level,
            "logger": logger,
            "msg": msg,
            "pid": process.pid(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        if fields is not None:
            line.update(fields)
        if exc is not None:
            line["exc"] = exc
        return _ENCODER.encode(line).decode()


# (whole second, its ISO text without the offset); replaced whole, so threads never see
# one second's number with another's text.
_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`, with the
    date and time of the second formatted once per second (a third of the cost)."""
    fraction, whole = math.modf(created)  # rounded as datetime.fromtimestamp rounds
    second, micros = int(whole), round(fraction * 1_000_000)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    global _second
    cached = _second
    if cached[0] != second:
        text = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
        cached = _second = (second, text.removesuffix("+00:00"))
    return f"{cached[1]}.{micros // 1000:03d}+00:00"


class JsonLinesHandler(logging.StreamHandler):  # type: ignore[type-arg]  # generic only in typeshed
    """A StreamHandler that, while holding, keeps lines below WARNING for `write_held`."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self.holding = False
        self._held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not self.holding or record.levelno >= logging.WARNING:
            self.write_held()
            super().emit(record)
            return
        try:
            self._held.append(self.format(record))
        except Exception:  # as StreamHandler.emit: a bad record must not break the caller
            self.handleError(record)
        if len(self._held) >= _MAX_HELD:
            self.write_held()

    def hold(self, line: str) -> None:
        """Keep one formatted line for `write_held` (callers check `holding` first)."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._held.append(line)
        if len(self._held) >= _MAX_HELD:
            self.write_held()

    def write_held(self) -> None:
        """Write the held lines, in order, in writes of at most PIPE_BUF bytes of whole lines."""
        if not self._held:
            return
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            lines, self._held = self._held, []
            chunk: list[str] = []
            size = 0
            for line in lines:
                length = len(line.encode()) + 1
                if chunk and size + length > _ATOMIC_BYTES:
                    self._write("".join(chunk))
                    chunk, size = [], 0
                chunk.append(line + self.terminator)
                size += length
            self._write("".join(chunk))

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.flush()
        except Exception:  # as StreamHandler.emit: a full disk must not break a request
            self.handleError(logging.makeLogRecord({"msg": "held log lines"}))

    def close(self) -> None:
        self.write_held()
        super().close()


def log_fields(logger: logging.Logger, level: int, msg: str, fields: dict[str, Any]) -> None:
    """``logger.log(level, msg, extra={"fields": fields})``: the same line, made cheaply.

    When the logger writes only to a holding JsonLinesHandler (a serving worker, as
    `logging_config` sets it up) the line goes straight into that handler's buffer: a
    LogRecord and the handler chain around it cost more than the line itself, once per
    request for the access line. Anything else (another handler, a filter, WARNING and
    above) takes the ordinary path. The caller has checked `logger.isEnabledFor(level)`.
    """
    handlers = logger.handlers
    if len(handlers) == 1 and level < logging.WARNING and not logger.filters:
        handler = handlers[0]
        formatter = handler.formatter
        if (
            isinstance(handler, JsonLinesHandler)
            and handler.holding
            and level >= handler.level
            and not handler.filters
            and isinstance(formatter, JsonFormatter)
            and not logger.propagate
        ):
            name = logging.getLevelName(level)
            handler.hold(formatter.line(time.time(), name, logger.name, msg, fields))
            return
    logger.log(level, msg, extra={"fields": fields})


def _handlers() -> list[JsonLinesHandler]:
    loggers = [logging.getLogger(LOGGER_NAME), logging.getLogger()]
    return [h for lg in loggers for h in lg.handlers if isinstance(h, JsonLinesHandler)]


def hold_lines(holding: bool) -> None:
    """Start (True) or stop (False, writing what is held) holding lines in this process."""
    for handler in _handlers():
        handler.holding = holding
        if not holding:
            handler.write_held()


def write_held() -> None:
    """Write every line held in this process."""
    for handler in _handlers():
        handler.write_held()


async def write_held_every(interval_s: float) -> None:
    """Hold lines and write them every `interval_s` until cancelled, then write the rest."""
    hold_lines(True)
    try:
        while True:
            await asyncio.sleep(interval_s)
            write_held()
    finally:
        hold_lines(False)


def logging_config(level: str) -> dict[str, Any]:
    """A logging.config.dictConfig for scanopt and Granian: JSON lines on stdout."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "json": {
                "class": f"{__name__}.JsonLinesHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            LOGGER_NAME: {"handlers": ["json"], "level": level, "propagate": False},
            "_granian": {"handlers": ["json"], "level": level, "propagate": False},
            "granian.access": {"handlers": ["json"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["json"], "level": "WARNING"},
    }
