"""The log formats: time and level on every line, JSON one object per line, controls escaped."""

from __future__ import annotations

import json
import logging
import re

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
