"""JSON-lines logging with the request id of the request being served.

`REQUEST_ID` is a context variable (set per request by the HTTP observer), so every log
line written while serving a request carries its id without passing it around. The
launcher hands `logging_config` to Granian, which applies it in every worker, so Granian's
own lines are JSON too.
"""

from __future__ import annotations

import logging
import os
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

__all__ = ["LOGGER_NAME", "REQUEST_ID", "JsonFormatter", "logging_config"]

LOGGER_NAME: Final = "scanopt"
# A context variable, not a global: each request (task) sees its own value.
REQUEST_ID: Final[ContextVar[str | None]] = ContextVar("scanopt_request_id", default=None)
_ENCODER: Final = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, pid, request_id, then `fields`.

    Pass structured values as ``logger.info("msg", extra={"fields": {...}})``.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": os.getpid(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(line).decode()


def logging_config(level: str) -> dict[str, Any]:
    """A logging.config.dictConfig for scanopt and Granian: JSON lines on stdout."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
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
