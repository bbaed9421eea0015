"""JSON-lines logs: one object per line, with the request id of the request being served."""

from __future__ import annotations

import logging
import sys

import msgspec

from server.logs import REQUEST_ID, JsonFormatter, logging_config


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
