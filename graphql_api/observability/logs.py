"""Log lines as JSON objects (one a line) or as text, for our loggers, uvicorn's and
Strawberry's alike: everything propagates to one handler on the root logger.

Every line written while a request is handled carries its `request_id` (and `user_id` once
the caller is known); fields given with `extra=` become fields of the JSON object.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from .context import current_request

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has: anything else on a record came from `extra=`. uvicorn adds
# `color_message` (its message with ANSI colours) to some lines; it says nothing new.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
# uvicorn's and Strawberry's loggers: handlers of their own are dropped so nothing is written
# twice or in another format.
_THIRD_PARTY = ("uvicorn", "uvicorn.error", "uvicorn.asgi", "strawberry")


class RequestFields(logging.Filter):
    """Adds the request being handled (`request_id`, `user_id`) to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = current_request()
        if info is not None:
            if not hasattr(record, "request_id"):
                record.request_id = info.request_id
            user_id = info.user_id
            if user_id is not None and not hasattr(record, "user_id"):
                record.user_id = user_id
        return True


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The record's own fields: the request's and those given with `extra=`."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            **fields_of(record),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value…`, then the traceback: for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={_text(v)}" for k, v in fields_of(record).items() if v)
        line = super().formatMessage(record)
        return f"{line}  {fields}" if fields else line


def _timestamp(created: float) -> str:
    return (
        datetime.fromtimestamp(created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def chosen_format(configured: LogFormat | None, stream: TextIO) -> LogFormat:
    """`LOG_FORMAT`, else text for a person at a terminal and JSON for a log collector."""
    if configured is not None:
        return configured
    return "text" if stream.isatty() else "json"


def configure_logging(configured: LogFormat | None, stream: TextIO | None = None) -> LogFormat:
    """Send every logger's lines, at INFO and above, to `stream` (stderr) in one format."""
    stream = stream or sys.stderr
    chosen = chosen_format(configured, stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    handler.addFilter(RequestFields())
    root = logging.getLogger()
    for existing in root.handlers[:]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in _THIRD_PARTY:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return chosen
