"""`make run` (scripts/serve.py): every way of stopping stops everything, one run per data
folder, a port in use or a bad setting is one clear line and a non-zero exit, and the command a
refusal offers starts a second run as written."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import psutil
import pytest

from scripts.serve import ROOT
from tests.conftest import FUNCTION_URL, skip_for_mode
from tests.support.local_redis import free_port


@pytest.fixture(autouse=True)
def _own_servers_only() -> None:
    if FUNCTION_URL:
        skip_for_mode("starts its own servers; FUNCTION_URL names an outside one")


# Bounds that only a hung process reaches; no test asserts how fast anything is.
PATIENCE_SECONDS = 30


class Run:
    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None) -> None:
        env = {"PORT": str(free_port()), **(env or {})}
        self.port = int(env["PORT"]) if env["PORT"].isdigit() else 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scripts.serve", "--data-dir", str(data_dir)],
            cwd=ROOT,
            env={**os.environ, "REDIS_URL": "", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # signals from this test reach serve.py alone
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> list[psutil.Process]:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()
            try:
                if httpx.get(f"{self.url}/health/readiness", timeout=1).status_code == 200:
                    return psutil.Process(self.process.pid).children(recursive=True)
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("make run did not become ready")

    def finish(self) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=PATIENCE_SECONDS)
        return self.process.returncode, out.decode(), err.decode()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        for child in _children(run):
            child.kill()
        run.kill()


def _children(run: Run) -> list[psutil.Process]:
    try:
        return psutil.Process(run.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _all_gone(processes: list[psutil.Process]) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=PATIENCE_SECONDS)
    return alive


@pytest.mark.parametrize("stop_signal", [signal.SIGHUP, signal.SIGINT, signal.SIGTERM])
def test_every_stop_signal_stops_everything(
    runs: list[Run], tmp_path: Path, stop_signal: signal.Signals
) -> None:
    run = Run(tmp_path / "data")
    runs.append(run)
    children = run.wait_ready()
    names = " ".join(child.name() for child in children)
    assert "redis-server" in names and len(children) >= 3, names  # Redis, gunicorn, a worker
    run.process.send_signal(stop_signal)
    code, _, err = run.finish()
    assert code == 0, err
    assert _all_gone(children) == []
    assert "Traceback" not in err
    # The port and the data folder are free: a new run starts on them.
    again = Run(tmp_path / "data", env={"PORT": str(run.port)})
    runs.append(again)
    again.wait_ready()


def test_a_killed_make_run_takes_its_children_along(runs: list[Run], tmp_path: Path) -> None:
    run = Run(tmp_path / "data")
    runs.append(run)
    children = run.wait_ready()
    run.process.kill()  # no chance to clean up: the kernel's parent-death signal does it
    run.process.wait()
    assert _all_gone(children) == []


def test_a_second_run_on_one_data_folder_refuses(runs: list[Run], tmp_path: Path) -> None:
    first = Run(tmp_path / "data")
    runs.append(first)
    first.wait_ready()
    second = Run(tmp_path / "data")
    runs.append(second)
    code, out, err = second.finish()
    assert code != 0
    assert "serving" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "another `make run`" in lines[0], err
    assert f"pid {first.process.pid}" in lines[0]
    # The first one is untouched.
    assert httpx.get(f"{first.url}/health/readiness", timeout=5).status_code == 200


def offered_command(line: str) -> str:
    """The command a refusal offers: everything after "with: "."""
    match = re.search(r"with: (.+)$", line)
    assert match is not None, line
    return match[1]


def starts_as_written(command: str, environ: Mapping[str, str] | None = None) -> None:
    """Runs ``command`` in a shell at the project's root, as a user would paste it, and checks
    that it serves on the port it names; then stops it."""
    named = re.search(r"PORT=(\d+)", command)
    assert named is not None, command
    port = int(named[1])
    unset = ("PORT", "REDIS_URL", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    shell = subprocess.Popen(
        ["bash", "-c", command], cwd=ROOT, env={**env, **(environ or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + PATIENCE_SECONDS * 2  # make may refresh .venv first
        while time.monotonic() < deadline:
            assert shell.poll() is None, shell.communicate()[0].decode()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError(f"`{command}` did not serve on port {port}")
    finally:
        os.killpg(shell.pid, signal.SIGTERM)
        shell.wait(timeout=PATIENCE_SECONDS)


def test_a_port_in_use_is_one_line_naming_it(runs: list[Run], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = Run(tmp_path / "data", env={"PORT": str(port)})
        runs.append(run)
        code, out, err = run.finish()
        assert code != 0
        assert "serving" not in out and "embedded Redis" not in out
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"make run: port {port} on 127.0.0.1 is already in use")
        # Another program holds the port, and the data folder is free: a new port is enough.
        command = offered_command(lines[0])
        assert re.fullmatch(r"PORT=\d+ make run", command), command
        starts_as_written(command, {"REDIS_DATA_DIR": str(tmp_path / "data")})


def test_the_busy_port_hint_works_while_the_first_run_holds_port_and_data(
    runs: list[Run], tmp_path: Path
) -> None:
    first = Run(tmp_path / "data")
    runs.append(first)
    first.wait_ready()
    second = Run(tmp_path / "data", env={"PORT": str(first.port)})
    runs.append(second)
    code, _, err = second.finish()
    assert code != 0
    command = offered_command(err.strip())
    assert f"REDIS_DATA_DIR={tmp_path / 'data'}-" in command and command.endswith(" make run")
    starts_as_written(command)
    assert httpx.get(f"{first.url}/health/readiness", timeout=5).status_code == 200


def test_the_busy_folder_hint_works_as_written(runs: list[Run], tmp_path: Path) -> None:
    first = Run(tmp_path / "data")
    runs.append(first)
    first.wait_ready()
    second = Run(tmp_path / "data", env={"PORT": str(free_port()), "REDIS_URL": ""})
    runs.append(second)
    _, _, err = second.finish()
    command = offered_command(err.strip())
    assert command.startswith(f"PORT={second.port} REDIS_DATA_DIR="), command
    starts_as_written(command)


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "abc"), ("PORT", "70000"), ("WORKERS", "0"), ("MAX_BODY_BYTES", "abc"),
     ("REDIS_TIMEOUT_SECONDS", "-1"), ("LOG_FORMAT", "yaml")],
)  # fmt: skip
def test_a_bad_setting_is_one_line_naming_it(
    runs: list[Run], tmp_path: Path, name: str, value: str
) -> None:
    run = Run(tmp_path / "data", env={name: value})
    runs.append(run)
    code, out, err = run.finish()
    assert code != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], err
    assert "Traceback" not in err


def test_a_first_make_run_installs_only_what_serving_needs(tmp_path: Path) -> None:
    fresh_venv = tmp_path / "venv"
    plan = subprocess.run(
        ["make", "-n", "run", f"VENV={fresh_venv}"], cwd=ROOT, capture_output=True, text=True
    )
    assert plan.returncode == 0, plan.stderr
    assert "-r requirements-run.txt" in plan.stdout and "--progress-bar on" in plan.stdout
    assert "requirements-dev.txt" not in plan.stdout
    wanted = (ROOT / "requirements-run.txt").read_text()
    for tool in ("pytest", "mypy", "ruff", "locust", "matplotlib", "kubernetes"):
        assert tool not in wanted
