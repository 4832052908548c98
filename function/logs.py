"""Log records as lines a person or a cluster's log collector can read.

Every line carries its time (UTC, ISO 8601) and level. ``LOG_FORMAT=json`` writes one JSON object
per line (``time``, ``level``, ``logger``, ``message``, ``exception``). Control characters, which
a request path may carry into a message, are escaped in both formats, so a record is one line
(a traceback excepted in text format) and cannot rewrite a terminal.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import time
from datetime import UTC, datetime
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def escape(text: str, *, keep_newlines: bool = False) -> str:
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(lambda match: repr(match.group())[1:-1], text)


def _time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_time(record)} {record.levelname} {record.name}: {escape(record.getMessage())}"
        if record.exc_info:
            line += "\n" + escape(self.formatException(record.exc_info), keep_newlines=True)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # ensure_ascii escapes every control character (and all else outside ASCII).
        return json.dumps(entry)


def dict_config(log_format: str) -> dict[str, Any]:
    """A logging.config dictionary: every record to stderr in ``log_format`` (the setting
    ``LOG_FORMAT``: "json" or "text"); gunicorn's and uvicorn's error loggers keep their levels
    and use the same handler. No access log, as functions-framework has none: Knative's
    queue-proxy logs requests."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    handler = {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stderr"}
    own = {"handlers": ["stderr"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"stderr": handler},
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": own,
            "gunicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure(log_format: str) -> None:
    logging.config.dictConfig(dict_config(log_format))


class ThrottledWarning:
    """Logs a failure that repeats on every request at most once per interval, with a count:
    an outage under load must not turn into thousands of log lines a second."""

    def __init__(self, logger: logging.Logger, interval_seconds: float) -> None:
        self.logger = logger
        self.interval_seconds = interval_seconds
        self.next_at = 0.0
        self.held_back = 0

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self.next_at:
            self.held_back += 1
            return
        if self.held_back:
            message += f" (and {self.held_back} more like it since the last report)"
        self.logger.warning(message, *args)
        self.next_at, self.held_back = now + self.interval_seconds, 0
