"""Fixtures shared by every suite: a real Redis server and real function server processes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from scripts.serve import ENTRY_POINTS, ROOT, function_command
from tests.support.local_redis import RedisServer, free_port

STARTUP_TIMEOUT_SECONDS = 60
# With FUNCTION_URL set, the contract suite runs against that server (a container, a func runtime,
# a cluster's route) instead of starting its own; tests that need its Redis are skipped, saying so.
FUNCTION_URL = os.environ.get("FUNCTION_URL", "").rstrip("/")
EXTERNAL = "external"


# With CI set, a skip fails the run: in CI a missing tool, schema or server is a broken set-up,
# not a reason to pass. Only skips that belong to the mode the suite was asked to run in (such as
# FUNCTION_URL) stay skips, and they say so by calling skip_for_mode.
STRICT_SKIPS = bool(os.environ.get("CI", "").strip())


class ModeSkip(pytest.skip.Exception):  # type: ignore[misc]
    """A skip inherent to how the suite was asked to run; CI keeps it a skip."""


# The documented stored format, stated here on its own: expiry in Unix milliseconds, a space,
# the document with last_updated as compact JSON.
STORED_VALUE = re.compile(rb"(\d+) (\{.*\})", re.DOTALL)


def stored_document(value: bytes | None) -> tuple[int, dict[str, Any]]:
    """The expiry (Unix ms) and the document of a value as Redis holds it."""
    match = STORED_VALUE.fullmatch(value or b"")
    assert match is not None, f"not a stored value: {value!r}"
    return int(match[1]), json.loads(match[2])


def head_of_counted_size(target: bytes, counted: int) -> bytes:
    """A GET whose head counts ``counted`` bytes as the head limit counts them: the request
    target, and per field its name, its value and 4 bytes (": " and the line end)."""
    fixed = [(b"Host", b"test"), (b"Connection", b"close")]
    left = counted - len(target) - sum(len(name) + len(value) + 4 for name, value in fixed)
    pads: list[tuple[bytes, bytes]] = []
    while left > 0:
        size = min(left, 8000) - len(b"X-Pad-00") - 4  # each field within the 8190-byte limit
        pads.append((b"X-Pad-%02d" % len(pads), b"v" * size))
        left -= len(pads[-1][0]) + size + 4
    assert left == 0
    fields = b"".join(name + b": " + value + b"\r\n" for name, value in fixed + pads)
    return b"GET " + target + b" HTTP/1.1\r\n" + fields + b"\r\n"


def make_certificate(folder: Path, name: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate and its key for ``name`` (an IP address or a DNS name), made
    by openssl in ``folder``; the test is skipped, saying why, where openssl is missing."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed, so no test certificate can be made")
    kind = "IP" if name.replace(".", "").isdigit() else "DNS"
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName={kind}:{name}",
         "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    return certificate, key


def skip_for_mode(reason: str) -> NoReturn:
    raise ModeSkip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (STRICT_SKIPS and report.skipped) or hasattr(report, "wasxfail"):
        return
    if call.excinfo is not None and call.excinfo.errisinstance(ModeSkip):
        return
    reason = call.excinfo.value if call.excinfo is not None else report.longrepr
    report.outcome = "failed"
    report.longrepr = f"CI is set, so this skip fails the run: {reason}"


@dataclass
class RunningFunction:
    entry_point: str
    url: str
    process: subprocess.Popen[bytes] | None
    log_path: Path | None
    env: Mapping[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        if self.log_path is None:
            return f"(no log: {self.url} is a server this suite did not start)"
        return self.log_path.read_text(errors="replace")


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health/readiness", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(
        f"server not ready within {STARTUP_TIMEOUT_SECONDS} s:\n{log_path.read_text()}"
    )


def launch(
    command: list[str],
    env: Mapping[str, str],
    log_path: Path,
    port: int,
    *,
    inherit_environment: bool = True,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server command and wait for its readiness; ``env`` goes on top of this process's
    environment, or alone with ``inherit_environment=False``."""
    full_env = {**os.environ, **env} if inherit_environment else dict(env)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url, process, log_path)
    return process, url


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if FUNCTION_URL:
        skip_for_mode(f"needs the function's own Redis; {FUNCTION_URL} is not started here")
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


StartFunction = Callable[..., RunningFunction]


def _starter(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[StartFunction, list[RunningFunction]]:
    started: list[RunningFunction] = []

    def start(
        entry_point: str = "handle",
        env: Mapping[str, str] | None = None,
        workers: int = 1,
    ) -> RunningFunction:
        port = free_port()
        scratch = tmp_path_factory.mktemp("function")
        full_env = {
            "REDIS_URL": redis_server.function_url,  # least privilege, as deployed
            "WORKERS": str(workers),
            # gunicorn's control socket goes here: servers running side by side keep their own.
            "XDG_RUNTIME_DIR": str(scratch),
            **(env or {}),
        }
        log_path = scratch / f"{entry_point}.log"
        process, url = launch(function_command(entry_point, port), full_env, log_path, port)
        running = RunningFunction(entry_point, url, process, log_path, full_env)
        started.append(running)
        return running

    return start, started


@pytest.fixture
def start_function(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartFunction]:
    """Starts functions-framework processes against the session's Redis; stops them after the test.

    ``env`` entries override the defaults (``REDIS_URL`` of the session's Redis, ``WORKERS=1``).
    """
    start, started = _starter(redis_server, tmp_path_factory)
    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="session", params=[EXTERNAL] if FUNCTION_URL else ENTRY_POINTS)
def function(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningFunction]:
    """One server per entry point for the whole session; tests using it run against both.

    With FUNCTION_URL set, the one server at that URL instead.
    """
    if request.param == EXTERNAL:
        yield RunningFunction(EXTERNAL, FUNCTION_URL, None, None)
        return
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    start, started = _starter(redis_server, tmp_path_factory)
    yield start(request.param)
    for running in started:
        running.stop()
