"""func's Python runtime, installed from pinned wheels into a clean virtual environment exactly as
func's host builder installs it (scripts/func_runtime.py), serving ``function.new`` against a real
redis-server. Installing takes 20 to 50 s once per session (pip builds both projects)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from scripts.func_runtime import FuncRuntime, prepare
from tests.conftest import RunningFunction, launch
from tests.support.local_redis import RedisServer, free_port


@pytest.fixture(scope="session")
def func_runtime(tmp_path_factory: pytest.TempPathFactory) -> FuncRuntime:
    return prepare(tmp_path_factory.mktemp("func-runtime"))


@pytest.fixture(scope="session")
def func_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    # Not the shared redis_server fixture: that one is skipped when FUNCTION_URL is set.
    with RedisServer(tmp_path_factory.mktemp("func-redis")) as server:
        yield server


def start_func(
    runtime: FuncRuntime, redis_url: str, log_dir: Path, env: Mapping[str, str] | None = None
) -> RunningFunction:
    """Starts the runtime as the image does: its environment only, no variable of this process
    but PATH; LISTEN_ADDRESS on a free loopback port."""
    port = free_port()
    full_env = {
        "PATH": os.environ["PATH"],
        "REDIS_URL": redis_url,
        **runtime.environment(f"127.0.0.1:{port}"),
        **(env or {}),
    }
    log_path = log_dir / "func.log"
    process, url = launch(runtime.command(), full_env, log_path, port, inherit_environment=False)
    return RunningFunction("func", url, process, log_path, full_env)


@pytest.fixture(scope="session")
def func_server(
    func_runtime: FuncRuntime, func_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningFunction]:
    running = start_func(func_runtime, func_redis.url, tmp_path_factory.mktemp("func"))
    yield running
    running.stop()
