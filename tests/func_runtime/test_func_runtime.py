"""The function under func's own Python runtime (func-python), installed as func's host builder
installs it: what gets installed, the contract suite, the probes, invoke, outages and shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from scripts.func_runtime import FuncRuntime, func_python_requirement
from scripts.serve import ROOT
from tests.conftest import RunningFunction
from tests.func_runtime.conftest import start_func
from tests.requirement_files import read
from tests.support.local_redis import RedisServer, free_port

# func invoke's defaults (pkg/functions/invoke.go): this body and type, POST or GET, to the root.
INVOKE_BODY = b'{"message":"Hello World"}'
INVOKE_HEADERS = {"Content-Type": "application/json"}


def test_installs_func_python_and_the_pinned_closure_without_functions_framework(
    func_runtime: FuncRuntime,
) -> None:
    installed = func_runtime.installed()
    requirements, constraints = read(ROOT / "requirements-func.txt")
    pinned = {pin.name: pin.version for pin in requirements + constraints}
    assert installed.pop("service") and installed.pop("function") == "1.0.0"
    # Everything pip resolved is pinned, at the pinned version: the closure is complete.
    assert {name: pinned.get(name) for name in installed} == installed
    assert {pin.name for pin in requirements if pin.applies} <= set(installed)
    assert installed["func-python"] == func_python_requirement().partition("==")[2]
    assert not {"functions-framework", "flask", "gunicorn", "uvicorn"} & set(installed)


def test_contract_suite_passes_against_it(func_server: RunningFunction) -> None:
    """The black-box contract suite, as anyone runs it against a server of their own.

    Left out: other methods on the probe paths, which func-python answers itself (200 text/plain,
    docs/func.md, "The func way"); the probe tests below check what it answers there instead.
    """
    probe_methods = "not (true_allow and health)"
    command = [sys.executable, "-m", "pytest", "tests/contract", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, "-k", probe_methods],
        cwd=ROOT,
        env={**os.environ, "FUNCTION_URL": func_server.url},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    assert " passed" in summary and "failed" not in summary, summary


@pytest.mark.parametrize(
    ("probe", "message"), [("/health/liveness", "alive"), ("/health/readiness", "ready")]
)
def test_probes_are_answered_by_func_python_for_any_method(
    func_server: RunningFunction, func_redis: RedisServer, probe: str, message: str
) -> None:
    with redis.Redis.from_url(func_redis.url) as connection:
        keys_before = sorted(connection.keys("*"))
        with httpx.Client(base_url=func_server.url, timeout=10) as http:
            response = http.get(probe)
            assert (response.status_code, response.text) == (200, message)
            assert response.headers["content-type"] == "text/plain"
            # func-python answers the exact path for every method: this PUT stores nothing.
            put = http.put(probe, json={"a": 1})
            assert (put.status_code, put.text) == (200, message)
            # Any other spelling reaches the function, which refuses a write there...
            refused = http.put(f"{probe}/", json={"a": 1})
            assert refused.status_code == 405
            assert refused.json()["error"] == "method_not_allowed"
            # ...and paths below the probes are ordinary resources.
            below = http.put(f"{probe}/note", json={"a": 1})
            assert below.status_code in (200, 201)
            assert http.get(f"{probe}/note").json()["a"] == 1
            assert http.delete(f"{probe}/note").status_code == 204
        assert sorted(connection.keys("*")) == keys_before


def test_func_invoke_defaults_get_a_clear_405_and_get_counts(func_server: RunningFunction) -> None:
    with httpx.Client(base_url=func_server.url, timeout=10) as http:
        # `func invoke`: POST, which func reports as a failure (HTTP 405).
        post = http.post("/", content=INVOKE_BODY, headers=INVOKE_HEADERS)
        assert post.status_code == 405
        assert post.headers["allow"] == "GET, HEAD"
        assert post.json()["error"] == "method_not_allowed"
        # `func invoke --request-type=GET`: the same body on a GET, which counts a hit.
        first = http.request("GET", "/", content=INVOKE_BODY, headers=INVOKE_HEADERS)
        second = http.request("GET", "/", content=INVOKE_BODY, headers=INVOKE_HEADERS)
    assert first.status_code == second.status_code == 200
    first_count = int(first.text.removeprefix("Count is ").removesuffix("."))
    assert second.text == f"Count is {first_count + 1}."


def test_redis_outage_keeps_probes_green_and_recovers(
    func_runtime: FuncRuntime, tmp_path: Path
) -> None:
    port = free_port()
    server = RedisServer(tmp_path / "redis", port=port).start()
    running = start_func(func_runtime, server.url, tmp_path)
    try:
        with httpx.Client(base_url=running.url, timeout=10) as http:
            assert http.get("/").status_code == 200
            server.stop()
            down = http.get("/")
            assert down.status_code == 503 and down.headers["retry-after"] == "1"
            assert down.json()["error"] == "redis_unavailable"
            # Readiness and liveness answer from the process: a blip takes no instance away.
            assert http.get("/health/readiness").status_code == 200
            assert http.get("/health/liveness").status_code == 200
            server = RedisServer(tmp_path / "redis", port=port).start()
            assert http.get("/").status_code == 200
    finally:
        running.stop()
        server.stop()


def test_sigterm_runs_stop_and_exits_cleanly(
    func_runtime: FuncRuntime, func_redis: RedisServer, tmp_path: Path
) -> None:
    running = start_func(func_runtime, func_redis.url, tmp_path)
    assert running.process is not None
    assert httpx.get(f"{running.url}/", timeout=10).status_code == 200  # a pooled connection
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=15) == 0, running.log()
    log = running.log()
    assert "Traceback" not in log and "Unclosed" not in log, log


def test_a_bad_setting_ends_the_process_before_it_listens(
    func_runtime: FuncRuntime, func_redis: RedisServer, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "REDIS_URL": func_redis.url,
        "TTL_MIN_SECONDS": "0",
        **func_runtime.environment(f"127.0.0.1:{free_port()}"),
    }
    result = subprocess.run(
        func_runtime.command(), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "TTL_MIN_SECONDS must be at least 1" in result.stderr


def test_first_request_after_start_needs_no_warm_up(
    func_runtime: FuncRuntime, func_redis: RedisServer, tmp_path: Path
) -> None:
    """Readiness turns 200 only after ``start`` made the client: the next request is served."""
    running = start_func(func_runtime, func_redis.url, tmp_path)
    try:
        assert httpx.get(f"{running.url}/", timeout=10).status_code == 200
    finally:
        running.stop()
