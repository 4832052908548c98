"""The servers under test: how each is started, probed, measured for memory and stopped."""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.cpu import process_tree
from scripts import func_runtime
from scripts.serve import ROOT, framework_command, function_command

BENCH_DIR = Path(__file__).resolve().parent

START_TIMEOUT_SECONDS = 30.0
PROBE_INTERVAL_SECONDS = 0.01
STOP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ServerSpec:
    name: str
    description: str
    command: Callable[[int], list[str]]
    probe_path: str
    env: dict[str, str] = field(default_factory=dict)


def _baseline_command(port: int) -> list[str]:
    return [sys.executable, str(BENCH_DIR / "baseline_app.py")]


def _pool_command(port: int) -> list[str]:
    return framework_command(BENCH_DIR / "pool_function.py", "handle", port, asgi=True)


def _noop_command(port: int) -> list[str]:
    return framework_command(BENCH_DIR / "noop_function.py", "noop", port, asgi=True)


def _func_command(port: int) -> list[str]:
    # Installed once into .func-runtime/ (about 20 s), reused while the sources stay the same.
    runtime = func_runtime.prepare()
    listen = runtime.environment(f"127.0.0.1:{port}")
    return ["env", *(f"{name}={value}" for name, value in listen.items()), *runtime.command()]


# In run order. One process (one gunicorn worker) each, like the reference measurements.
SERVERS: tuple[ServerSpec, ...] = (
    ServerSpec(
        name="baseline",
        description=(
            "the article's app as written: Flask development server, a Redis round trip "
            "per call (3 per GET, 3 per PUT, 2 per GET /)"
        ),
        command=_baseline_command,
        probe_path="/",
    ),
    ServerSpec(
        name="handle_flask",
        description="functions-framework, Flask mode: gunicorn gthread, 1 worker",
        command=functools.partial(function_command, "handle_flask"),
        probe_path="/health/readiness",
    ),
    ServerSpec(
        name="handle",
        description="functions-framework --asgi: gunicorn + uvicorn worker, 1 worker",
        command=functools.partial(function_command, "handle"),
        probe_path="/health/readiness",
    ),
    ServerSpec(
        name="func",
        description="function.new under func's runtime: func-python 0.8.1 (hypercorn), 1 process",
        command=_func_command,
        probe_path="/health/readiness",
    ),
    ServerSpec(
        name="handle_pool",
        description="handle as before: asyncio pool, pure-Python parser, the framework's router",
        command=_pool_command,
        probe_path="/health/readiness",
    ),
    ServerSpec(
        name="noop",
        description="functions-framework --asgi function that does nothing (framework ceiling)",
        command=_noop_command,
        probe_path="/",
    ),
)
SERVER_NAMES = tuple(spec.name for spec in SERVERS)


@dataclass(frozen=True)
class TreeMemory:
    rss_bytes: int
    pss_bytes: int
    processes: int


class ServerFailedError(RuntimeError):
    """A server under test exited or never answered."""


@dataclass
class RunningServer:
    spec: ServerSpec
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    seconds_to_first_200: float

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory(self) -> TreeMemory:
        """Memory of the whole process tree (gunicorn arbiter + workers).

        RSS counts pages a forked worker shares with its arbiter once per process, so the sum
        overstates; PSS splits shared pages between their users and sums to the true share.
        """
        tree = process_tree(self.process.pid)
        rss = pss = 0
        for member in tree:
            try:
                info = member.memory_full_info()
            except psutil.NoSuchProcess:
                continue
            rss += info.rss
            pss += getattr(info, "pss", 0)  # Linux only
        return TreeMemory(rss_bytes=rss, pss_bytes=pss, processes=len(tree))

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        # Each server runs in its own process group, so this reaches gunicorn's workers too.
        _signal_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def start_server(spec: ServerSpec, port: int, redis_url: str, log_path: Path) -> RunningServer:
    """Spawn the server and wait for its first 200 on the probe path, timing spawn to answer."""
    env = {**os.environ, "REDIS_URL": redis_url, "PORT": str(port), "WORKERS": "1", **spec.env}
    env.pop("THREADS", None)  # functions-framework's own default (cpu_count * 4) applies
    command = spec.command(port)  # before the clock: making the command line is not starting
    with log_path.open("ab") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(spec, port, process, log_path, seconds_to_first_200=0.0)
    deadline = started + START_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise ServerFailedError(
                f"{spec.name} exited with code {process.returncode} before answering:\n"
                + server.log_tail()
            )
        if _answers_200(port, spec.probe_path):
            server.seconds_to_first_200 = time.perf_counter() - started
            return server
        time.sleep(PROBE_INTERVAL_SECONDS)
    server.stop()
    raise ServerFailedError(
        f"{spec.name} gave no 200 on {spec.probe_path} within {START_TIMEOUT_SECONDS} s:\n"
        + server.log_tail()
    )


def _answers_200(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def request_once(
    base_url: str, method: str, path: str, body: str | None = None
) -> tuple[int, bytes]:
    """One plain request, for seeding and sanity checks before the load."""
    host_port = base_url.removeprefix("http://")
    connection = http.client.HTTPConnection(host_port, timeout=5.0)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
