"""The documented defaults at their boundaries under func's runtime, started as the image starts
it (no setting but REDIS_URL): the same probes as tests/contract/test_defaults.py. The head and
body timeouts and the keep-alive time are those of functions-framework's servers, which func's
runtime does not use, so they are not probed here. REDIS_MAX_CONNECTIONS bounds the replies
awaited on the process's one shared connection, as under ``handle``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from scripts.func_runtime import FuncRuntime
from scripts.serve import ROOT, port_in_use
from tests.conftest import RunningFunction, launch
from tests.contract import test_defaults as defaults
from tests.delaying_proxy import DelayingProxy
from tests.support.local_redis import RedisServer

from .conftest import start_func


@pytest.fixture
def http(func_server: RunningFunction) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=func_server.url, timeout=30) as client:
        yield client


@pytest.fixture
def name() -> str:
    return f"/defaults/{uuid.uuid4().hex}"


def test_path_length(http: httpx.Client) -> None:
    defaults.probe_path_length(http)


def test_body_size(http: httpx.Client, name: str) -> None:
    defaults.probe_body_size(http, name)


def test_ttl_bounds(http: httpx.Client, name: str) -> None:
    defaults.probe_ttl_bounds(http, name)


def test_json_depth(http: httpx.Client, name: str) -> None:
    defaults.probe_json_depth(http, name)


def test_quoted_characters(http: httpx.Client, name: str) -> None:
    defaults.probe_quoted_characters(http, name)


def test_default_ttl_under_the_default_prefix(
    http: httpx.Client, name: str, func_redis: RedisServer
) -> None:
    defaults.probe_default_ttl(http, name)
    with redis.Redis.from_url(func_redis.url) as direct:
        pttl = direct.pttl(f"{defaults.KEY_PREFIX}r:{name}")
    assert (defaults.TTL_DEFAULT_SECONDS - 10) * 1000 <= pttl <= defaults.TTL_DEFAULT_SECONDS * 1000


def test_redis_max_connections_wait_on_redis_and_one_more_is_refused(
    func_runtime: FuncRuntime, func_redis: RedisServer, tmp_path: Path
) -> None:
    with DelayingProxy(func_redis.port) as proxy:
        env = {"REDIS_TIMEOUT_SECONDS": defaults.PILE_REDIS_TIMEOUT}
        running = start_func(func_runtime, proxy.url, tmp_path, env)
        try:
            answers, one_more = defaults.probe_waiting_requests(
                running.url, proxy, func_redis.url, defaults.REDIS_MAX_CONNECTIONS
            )
        finally:
            running.stop()
    defaults.assert_one_more_is_refused(answers, one_more)


# func-python's LISTEN_ADDRESS when none is set, as docs/configuration.md states it.
LISTEN_ADDRESS = "[::]:8080,0.0.0.0:8080"


def test_listen_address_default(
    func_runtime: FuncRuntime, func_redis: RedisServer, tmp_path: Path
) -> None:
    """With no LISTEN_ADDRESS the runtime listens on port 8080 of every IPv6 and IPv4 address."""
    port = defaults.FRAMEWORK_PORT
    if port_in_use("0.0.0.0", port):
        pytest.skip(f"another server on this machine holds port {port}")
    env = {"PATH": os.environ["PATH"], "REDIS_URL": func_redis.url}
    env |= {"PYTHONPATH": func_runtime.environment(LISTEN_ADDRESS)["PYTHONPATH"]}
    log_path = tmp_path / "func.log"
    process, url = launch(func_runtime.command(), env, log_path, port, inherit_environment=False)
    running = RunningFunction("func", url, process, log_path, env)
    try:
        for host in ("[::1]", defaults.FRAMEWORK_HOST_ELSEWHERE):
            answer = httpx.get(f"http://{host}:{port}/health/liveness", timeout=30)
            assert answer.status_code == 200, host
    finally:
        running.stop()
    stated = (ROOT / "docs" / "configuration.md").read_text()
    assert f"| `LISTEN_ADDRESS` | `{LISTEN_ADDRESS}` |" in stated
