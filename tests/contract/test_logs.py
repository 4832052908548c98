"""Log lines carry time and level; LOG_FORMAT=json writes one JSON object per line; control
characters a request brings in are escaped."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import RunningFunction

TIMESTAMP = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
)


def _provoke_a_logged_fault(running: RunningFunction, redis_url: str) -> None:
    # A key of the wrong type makes the read fail: logged with its traceback, whose message
    # carries the path, control characters and all.
    with redis.Redis.from_url(redis_url) as direct:
        direct.hset("kv:r:/logs/wrong", "a", "1")
    with httpx.Client(base_url=running.url, timeout=10) as http:
        assert http.get("/logs/wrong").status_code == 500
        assert http.put("/logs/%1b[2J", json={}).status_code == 400  # refused, maybe logged


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_text_lines_have_time_and_level(
    start_function: Any, redis_server: Any, entry_point: str
) -> None:
    running: RunningFunction = start_function(entry_point)
    _provoke_a_logged_fault(running, redis_server.url)
    running.stop()
    log = running.log()
    records = [line for line in log.splitlines() if line and not line.startswith((" ", "Trace"))]
    assert records, log
    for line in records:
        if line.startswith(("redis.", "ValueError", "KeyError")):
            continue  # the last line of a traceback
        assert TIMESTAMP.match(line), line
    assert "\x1b" not in log


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_json_lines(start_function: Any, redis_server: Any, entry_point: str) -> None:
    running: RunningFunction = start_function(entry_point, env={"LOG_FORMAT": "json"})
    _provoke_a_logged_fault(running, redis_server.url)
    running.stop()
    lines = [line for line in running.log().splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
    faults = [record for record in records if "exception" in record]
    assert faults and "WRONGTYPE" in faults[0]["exception"]
    assert all(ord(char) >= 0x20 for line in lines for char in line)
