"""The log formats: time and level on every line, JSON one object per line, controls escaped."""

from __future__ import annotations

import json
import logging
import re
import sys

import pytest

from function import logs


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("function.test", logging.WARNING, __file__, 1, message, args, None)


def test_text_has_time_level_and_escapes_controls() -> None:
    line = logs.TextFormatter().format(_record("path %s", "/a\x1b[2J\nforged INFO line\x00"))
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING function\.test: ", line)
    assert "\n" not in line and "\x1b" not in line and "\x00" not in line
    assert "/a\\x1b[2J\\nforged INFO line\\x00" in line


def test_json_is_one_object_per_line() -> None:
    line = logs.JsonFormatter().format(_record("path %s", "/a\x1b\n\u0085é"))
    assert "\n" not in line and all(0x20 <= ord(char) < 0x7F for char in line)
    record = json.loads(line)
    assert record["level"] == "WARNING" and record["logger"] == "function.test"
    assert record["message"] == "path /a\x1b\n\u0085é"
    assert record["time"].endswith("Z")


def _expected_config(formatter: str) -> dict[str, object]:
    handler = {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stderr"}
    own = {"handlers": ["stderr"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": f"function.logs.{formatter}"}},
        "handlers": {"stderr": handler},
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": own,
            "gunicorn.access": {"handlers": [], "propagate": False},
        },
    }


@pytest.mark.parametrize(
    ("log_format", "formatter"), [("json", "JsonFormatter"), ("text", "TextFormatter")]
)
def test_dict_config_sends_everything_to_stderr_in_the_chosen_format(
    log_format: str, formatter: str
) -> None:
    assert logs.dict_config(log_format) == _expected_config(formatter)


def test_exceptions_are_kept_in_both_formats() -> None:
    try:
        raise RuntimeError("boom\x1b")
    except RuntimeError:
        record = logging.LogRecord(
            "function.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    text = logs.TextFormatter().format(record)
    # The record's line, then the traceback's own lines, its control characters escaped.
    first, second, *middle, last = text.split("\n")
    assert re.fullmatch(r"\S+Z ERROR function\.test: failed", first)
    assert second == "Traceback (most recent call last):"
    assert middle and all(line.startswith("  ") for line in middle)
    assert last == "RuntimeError: boom\\x1b"
    entry = json.loads(logs.JsonFormatter().format(record))
    assert set(entry) == {"time", "level", "logger", "message", "exception"}
    assert (
        entry["exception"].startswith("Traceback")
        and "RuntimeError: boom\x1b" in entry["exception"]
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])


@pytest.mark.parametrize(
    ("log_format", "formatter"), [("json", logs.JsonFormatter), ("text", logs.TextFormatter)]
)
def test_configure_installs_the_chosen_format(log_format: str, formatter: type) -> None:
    root = logging.getLogger()
    kept = root.handlers[:], root.level
    try:
        logs.configure(log_format)
        (handler,) = root.handlers
        assert type(handler.formatter) is formatter
    finally:
        root.handlers, _ = kept
        root.setLevel(kept[1])
