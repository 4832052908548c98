"""The function's Redis user may run only the commands the function uses, only on its keys.

Every suite already serves the function as this user (tests/conftest.py), so the list is complete
for what the function does; here a command outside it, a key outside the prefix and a script that
reaches further are all refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from redis.exceptions import NoPermissionError, ResponseError

from tests.conftest import RunningFunction
from tests.support.local_redis import FUNCTION_ACL_RULES, FUNCTION_USER, RedisServer


@pytest.fixture
def as_function(tmp_path: Path) -> Iterator[redis.Redis]:
    with (
        RedisServer(tmp_path / "redis") as server,
        redis.Redis.from_url(server.function_url) as connection,
    ):
        yield connection


def test_the_function_user_does_what_the_function_needs(as_function: redis.Redis) -> None:
    assert as_function.set("kv:r:/a", b"{}", ex=60)
    assert as_function.set("kv:r:/a", b"[]", ex=60, get=True) == b"{}"
    assert as_function.get("kv:r:/a") == b"[]"
    assert as_function.pttl("kv:r:/a") > 0
    assert as_function.execute_command("INCR", "kv:count") == 1  # type: ignore[no-untyped-call]
    assert as_function.eval("return redis.call('PTTL', KEYS[1])", 1, "kv:r:/a") > 0
    assert as_function.delete("kv:r:/a") == 1


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "SET", "appendonly", "no"),
        ("KEYS", "*"),
        ("SCAN", "0"),
        ("SCRIPT", "FLUSH"),
        ("SHUTDOWN",),
        ("BGREWRITEAOF",),
        ("CLIENT", "KILL", "TYPE", "normal"),
        ("ACL", "LIST"),
        ("PUBLISH", "channel", "x"),
        ("EXPIRE", "kv:r:/a", "1"),
        ("TTL", "kv:r:/a"),
        ("EXISTS", "kv:r:/a"),
    ],
)
def test_commands_outside_the_list_are_refused(
    as_function: redis.Redis, command: tuple[str, ...]
) -> None:
    with pytest.raises(NoPermissionError):
        as_function.execute_command(*command)  # type: ignore[no-untyped-call]


def test_keys_outside_the_prefix_and_scripts_that_reach_further_are_refused(
    as_function: redis.Redis,
) -> None:
    with pytest.raises(NoPermissionError):
        as_function.get("other:secret")
    with pytest.raises(NoPermissionError):
        as_function.set("session:1", "x")
    with pytest.raises(ResponseError, match="can't run this command"):
        as_function.eval("return redis.call('FLUSHALL')", 0)
    with pytest.raises(ResponseError):
        as_function.eval("return redis.call('GET', KEYS[1])", 1, "other:secret")


def test_the_rules_are_least_privilege() -> None:
    assert FUNCTION_ACL_RULES[:4] == ("resetkeys", "~kv:*", "resetchannels", "-@all")
    granted = [rule for rule in FUNCTION_ACL_RULES if rule.startswith("+")]
    assert all("@" not in rule for rule in granted), "grant commands one by one, no categories"


def test_the_served_function_runs_as_that_user(function: RunningFunction) -> None:
    if function.process is None:
        pytest.skip("the function at FUNCTION_URL was not started here")
    assert f"{FUNCTION_USER}:" in function.env["REDIS_URL"]
    path = f"/acl/{uuid.uuid4().hex}"
    with httpx.Client(base_url=function.url, timeout=10) as http:
        assert http.put(path, json={"a": 1}).status_code == 201
        assert http.get(path).status_code == 200
        assert http.head(path).status_code == 200
        assert http.get("/").status_code == 200
        assert http.head("/").status_code == 200
        assert http.delete(path).status_code == 204
