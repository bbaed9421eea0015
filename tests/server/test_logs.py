"""JSON-lines logs: one object per line, with the request id of the request being served."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec
import pytest

from server.logs import (
    REQUEST_ID,
    JsonFormatter,
    JsonLinesHandler,
    hold_lines,
    log_fields,
    logging_config,
    write_held_every,
)


def record(message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("scanopt", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_line_is_one_json_object_with_fields() -> None:
    """ts, level, logger, msg and pid are always there; `fields` are merged in."""
    line = JsonFormatter().format(record("model loaded", fields={"model_version": "v3"}))
    assert "\n" not in line
    body = msgspec.json.decode(line)
    assert body["msg"] == "model loaded"
    assert body["level"] == "INFO"
    assert body["model_version"] == "v3"
    assert "request_id" not in body
    assert {"ts", "pid", "logger"} <= set(body)


def test_request_id_of_the_current_request_is_included() -> None:
    """Inside a request (REQUEST_ID set) every line names it."""
    token = REQUEST_ID.set("abc123")
    try:
        body = msgspec.json.decode(JsonFormatter().format(record("x")))
    finally:
        REQUEST_ID.reset(token)
    assert body["request_id"] == "abc123"


def test_exceptions_are_kept_on_the_same_line() -> None:
    """A traceback goes into `exc`, still one line of JSON."""
    try:
        raise ValueError("bad")
    except ValueError:
        rec = logging.LogRecord("scanopt", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    assert "ValueError: bad" in msgspec.json.decode(line)["exc"]


def test_config_sends_scanopt_and_granian_through_the_formatter() -> None:
    """The dictConfig given to Granian formats our and Granian's loggers as JSON."""
    config = logging_config("WARNING")
    for name in ("scanopt", "_granian", "granian.access"):
        assert config["loggers"][name]["handlers"] == ["json"]
    assert config["loggers"]["scanopt"]["level"] == "WARNING"
    assert config["formatters"]["json"]["()"] == "server.logs.JsonFormatter"
    assert config["handlers"]["json"]["class"] == "server.logs.JsonLinesHandler"


@pytest.mark.parametrize(
    "created", [1796163090.0109994, 1796163090.9999996, 1796163090.0, 1796163090.0005]
)
def test_timestamp_is_the_iso_millisecond_of_the_record(created: float) -> None:
    """ts reads as datetime.fromtimestamp(created, UTC).isoformat to the millisecond."""
    rec = record("x")
    rec.created = created
    ts = msgspec.json.decode(JsonFormatter().format(rec))["ts"]
    assert ts == datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class Writes(io.StringIO):
    """A stream that remembers each flushed write, as the system calls a file would see."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self._since = 0

    def flush(self) -> None:
        text = self.getvalue()
        if len(text) > self._since:
            self.writes.append(text[self._since :])
            self._since = len(text)


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, Writes, JsonLinesHandler]]:
    """The scanopt logger writing through a JsonLinesHandler into a `Writes` stream."""
    logger = logging.getLogger("scanopt")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    stream = Writes()
    handler = JsonLinesHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream, handler
    finally:
        hold_lines(False)
        logger.handlers[:], logger.level, logger.propagate = saved


def messages(stream: Writes) -> list[str]:
    return [msgspec.json.decode(line)["msg"] for line in stream.getvalue().splitlines()]


def test_without_holding_every_line_is_written_at_once(
    lines: tuple[logging.Logger, Writes, JsonLinesHandler],
) -> None:
    """Not holding (the launcher, tests, SCANOPT_LOG_FLUSH_S=0): one write per line."""
    logger, stream, _ = lines
    for n in range(3):
        logger.info("line %d", n)
    assert stream.writes == [line + "\n" for line in stream.getvalue().splitlines()]
    assert messages(stream) == ["line 0", "line 1", "line 2"]


def test_held_lines_go_out_together_in_order(
    lines: tuple[logging.Logger, Writes, JsonLinesHandler],
) -> None:
    """While holding nothing is written until write_held; then one write, in order."""
    logger, stream, handler = lines
    hold_lines(True)
    for n in range(5):
        logger.info("line %d", n)
    assert stream.getvalue() == ""
    handler.write_held()
    assert len(stream.writes) == 1
    assert messages(stream) == [f"line {n}" for n in range(5)]


def test_a_warning_goes_out_at_once_after_the_held_lines(
    lines: tuple[logging.Logger, Writes, JsonLinesHandler],
) -> None:
    """An operator sees a warning or an error immediately, and the order stays true."""
    logger, stream, _ = lines
    hold_lines(True)
    logger.info("before")
    logger.warning("trouble")
    assert messages(stream) == ["before", "trouble"]
    logger.info("after")
    assert messages(stream) == ["before", "trouble"]


def test_each_write_is_whole_lines_within_pipe_buf(
    lines: tuple[logging.Logger, Writes, JsonLinesHandler],
) -> None:
    """Writes of at most 4096 bytes of whole lines: atomic on a pipe that workers share."""
    logger, stream, handler = lines
    hold_lines(True)
    for n in range(200):
        logger.info("line %d é", n)  # a non-ASCII character: bytes, not characters, count
    handler.write_held()
    assert len(stream.writes) > 1
    for write in stream.writes:
        assert len(write.encode()) <= 4096
        assert write.endswith("\n")
    assert messages(stream) == [f"line {n} é" for n in range(200)]


def test_holding_is_bounded_in_memory(
    lines: tuple[logging.Logger, Writes, JsonLinesHandler],
) -> None:
    """A burst beyond what a worker may hold is written at once, not kept."""
    logger, stream, _ = lines
    hold_lines(True)
    for n in range(1500):
        logger.info("line %d", n)
    assert 1000 <= len(messages(stream)) < 1500


def test_the_writer_task_writes_every_interval_and_the_rest_when_cancelled(
    lines: tuple[logging.Logger, Writes, JsonLinesHandler],
) -> None:
    """write_held_every: lines appear within the interval; cancelling writes what is left."""
    logger, stream, handler = lines

    async def scenario() -> tuple[list[str], list[str]]:
        writer = asyncio.create_task(write_held_every(0.05))
        await asyncio.sleep(0)
        logger.info("first")
        await asyncio.sleep(0.2)
        written = messages(stream)
        logger.info("last")
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        return written, messages(stream)

    written, final = asyncio.run(scenario())
    assert written == ["first"]
    assert final == ["first", "last"]
    assert handler.holding is False


def test_log_fields_writes_the_line_logging_would(
    lines: tuple[logging.Logger, Writes, JsonLinesHandler],
) -> None:
    """The access line's shortcut (holding) gives the ordinary path's line, ts aside."""
    logger, stream, handler = lines
    fields = {"method": "POST", "path": "/v1/predict", "status": 200, "duration_ms": 1.5}
    token = REQUEST_ID.set("rid-1")
    try:
        log_fields(logger, logging.INFO, "request", fields)  # not holding: a LogRecord
        hold_lines(True)
        log_fields(logger, logging.INFO, "request", fields)  # holding: the shortcut
        assert stream.getvalue().count("\n") == 1
        handler.write_held()
    finally:
        REQUEST_ID.reset(token)
    ordinary, shortcut = (msgspec.json.decode(line) for line in stream.getvalue().splitlines())
    assert ordinary.pop("ts")[:10] == shortcut.pop("ts")[:10]
    assert ordinary == shortcut
    assert shortcut["request_id"] == "rid-1"
    assert shortcut["duration_ms"] == 1.5


def test_log_fields_takes_the_ordinary_path_when_a_filter_is_set(
    lines: tuple[logging.Logger, Writes, JsonLinesHandler],
) -> None:
    """A filter on the handler still sees (and may drop) the access line."""
    logger, stream, handler = lines
    hold_lines(True)
    handler.addFilter(lambda record: False)
    log_fields(logger, logging.INFO, "request", {"status": 200})
    handler.write_held()
    assert stream.getvalue() == ""
