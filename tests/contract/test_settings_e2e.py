"""Every setting of the configuration table (docs/configuration.md), on a running server with a
value that is not its default, and a bad value of each stopping the start with a message naming
it.

REDIS_TIMEOUT_SECONDS is exercised in test_promises (a slow Redis), REDIS_MAX_CONNECTIONS in
test_redis_outage (all connections busy) and REDIS_URL's schemes in test_promises and
test_redis_tls; here the others, and REDIS_URL's database number.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import redis

from scripts.serve import ROOT, SOURCE, framework_command, function_command
from tests.conftest import RunningFunction, launch, stored_document
from tests.support.local_redis import RedisServer, free_port

from .conftest import error_of


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_non_default_settings_on_a_running_server(
    start_function: Any, redis_server: RedisServer, entry_point: str
) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}/"
    env = {
        "REDIS_URL": redis_server.url.removesuffix("/0") + "/2",
        "KEY_PREFIX": prefix,
        "TTL_DEFAULT_SECONDS": "120",
        "TTL_MIN_SECONDS": "10",
        "TTL_MAX_SECONDS": "1000",
        "MAX_BODY_BYTES": "64",
        "MAX_PATH_BYTES": "20",  # /health/readiness is 17
        "MAX_JSON_DEPTH": "2",
    }
    running: RunningFunction = start_function(entry_point, env=env)
    with httpx.Client(base_url=running.url, timeout=10) as http:
        # TTL_DEFAULT_SECONDS, KEY_PREFIX and the database of REDIS_URL
        assert http.put("/d", json={}).json()["ttl"] == 120
        with redis.Redis.from_url(redis_server.url.removesuffix("/0") + "/2") as db2:
            assert 110 <= db2.ttl(f"{prefix}r:/d") <= 120
        with redis.Redis.from_url(redis_server.url) as db0:
            assert db0.exists(f"{prefix}r:/d") == 0

        # TTL_MIN_SECONDS and TTL_MAX_SECONDS bound ?ttl= inclusively
        for ttl, status in (("10", 201), ("1000", 201), ("9", 400), ("1001", 400)):
            response = http.put(f"/ttl{ttl}", params={"ttl": ttl}, json={})
            assert response.status_code == status, (ttl, response.text)
            if status == 400:
                assert error_of(response) == "invalid_ttl"
            else:
                assert response.json()["ttl"] == int(ttl)

        # MAX_BODY_BYTES: 64 bytes are stored, 65 are not
        fits = b'{"a":"' + b"x" * 56 + b'"}'
        assert len(fits) == 64
        headers = {"content-type": "application/json"}
        assert http.put("/b", content=fits, headers=headers).status_code == 201
        too_large = http.put("/b", content=fits[:-2] + b'x"}', headers=headers)
        assert too_large.status_code == 413
        assert error_of(too_large) == "payload_too_large"
        assert http.get("/b").json()["a"] == "x" * 56

        # MAX_PATH_BYTES: 20 bytes of path are a resource, 21 are not
        assert http.put("/" + "p" * 19, json={}).status_code == 201
        too_long = http.put("/" + "p" * 20, json={})
        assert too_long.status_code == 414
        assert error_of(too_long) == "uri_too_long"

        # MAX_JSON_DEPTH: two levels are kept, three are not
        assert http.put("/j", json={"a": [1]}).status_code == 201
        too_deep = http.put("/j", json={"a": [[1]]})
        assert too_deep.status_code == 400
        assert error_of(too_deep) == "too_deep"
        assert http.get("/j").json()["a"] == [1]


def test_port_host_and_workers_are_read_from_the_environment(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """PORT, HOST and WORKERS are functions-framework's: the command line names none of them."""
    port = free_port()
    command = framework_command(SOURCE, "handle", port, asgi=True)
    command = command[: command.index("--host")]  # no --host, no --port
    env = {"REDIS_URL": redis_server.url, "PORT": str(port), "HOST": "127.0.0.1",
           "WORKERS": "2", "XDG_RUNTIME_DIR": str(tmp_path)}  # fmt: skip
    process, url = launch(command, env, tmp_path / "server.log", port)
    try:
        assert url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/health/liveness", timeout=10).json() == {"status": "ok"}
        # gunicorn forks its workers one after another: the first may answer before the
        # second exists, so wait (bounded) for the count to settle rather than sample it once
        workers = psutil.Process(process.pid).children()
        deadline = time.monotonic() + 20
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            workers = psutil.Process(process.pid).children()
        time.sleep(0.5)  # a third worker, if WORKERS were misread, would appear by now
        workers = psutil.Process(process.pid).children()
        assert len(workers) == 2, [w.cmdline() for w in workers]
    finally:
        process.terminate()
        process.wait(timeout=30)


BAD_VALUES = [
    ("REDIS_URL", "localhost:6379"),
    ("REDIS_TIMEOUT_SECONDS", "soon"),
    ("REDIS_MAX_CONNECTIONS", "0"),
    ("KEY_PREFIX", None),  # any text is a prefix: no bad value
    ("TTL_DEFAULT_SECONDS", "1y"),
    ("TTL_MIN_SECONDS", "0"),
    ("TTL_MAX_SECONDS", "0"),
    ("MAX_BODY_BYTES", "1MiB"),
    ("MAX_PATH_BYTES", "1"),
    ("MAX_JSON_DEPTH", "-3"),
    ("HEAD_TIMEOUT_SECONDS", "0"),
    ("BODY_TIMEOUT_SECONDS", "never"),
    ("LOG_FORMAT", "xml"),
    ("REDIS_CLUSTER", "maybe"),
    ("WRITE_TOKEN", "too short"),
    ("READ_TOKEN", "has spaces in it, not a b64token"),
]


@pytest.mark.parametrize(("name", "bad"), [b for b in BAD_VALUES if b[1] is not None])
@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_a_bad_value_stops_the_start_naming_its_variable(
    tmp_path: Path, entry_point: str, name: str, bad: str
) -> None:
    port = free_port()
    env = {name: bad, "XDG_RUNTIME_DIR": str(tmp_path)}
    log_path = tmp_path / "server.log"
    with pytest.raises(RuntimeError, match="server exited with") as stopped:
        launch(function_command(entry_point, port), env, log_path, port)
    assert name in str(stopped.value)
    log = log_path.read_text()
    assert "configuration error: " in log and name in log and "Traceback" not in log


def test_the_table_lists_exactly_these_settings() -> None:
    """A setting added to the code without a row (or a row without a setting) fails here."""
    from dataclasses import fields

    from function.settings import Settings

    table = (ROOT / "docs" / "configuration.md").read_text()
    documented = {
        name.strip("` ")
        for row in table.splitlines()
        if row.startswith("| `")
        for name in row.split("|")[1].split(",")
    }
    read_by_the_function = {field.name.upper() for field in fields(Settings)}
    read_by_the_servers = {"PORT", "HOST", "WORKERS", "THREADS", "LISTEN_ADDRESS"}
    assert documented - read_by_the_servers == read_by_the_function
    assert read_by_the_servers <= documented
    assert {name for name, _ in BAD_VALUES} == read_by_the_function


def test_key_prefix_takes_any_text(
    start_function: Any, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    prefix = f"odd prefix {uuid.uuid4().hex[:6]} é:"
    # As Redis's administrator: the function's own ACL user may write under kv: only.
    env = {"KEY_PREFIX": prefix, "REDIS_URL": redis_server.url}
    running: RunningFunction = start_function("handle", env=env)
    with httpx.Client(base_url=running.url, timeout=10) as http:
        assert http.put("/x", json={"v": 1}).status_code == 201
    assert stored_document(redis_client.get(f"{prefix}r:/x"))[1]["v"] == 1
