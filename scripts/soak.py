"""`make soak`: steady mixed traffic against the function for a long while, watching for leaks.

Starts its own Redis and one server per entry point, sends PUT/GET/HEAD/DELETE and counter hits at
a steady rate, and every ``--interval`` seconds prints each server's resident memory and open file
descriptors other than the clients' connections (its whole process tree). Fails (exit 1) on any
error answer or transport error, or when memory or descriptors grew by ``--max-growth`` or more
from the first sample (taken after one interval of traffic, once the servers are warm) to the
last. Connections to Redis are counted apart: a pool grows with the load until it holds one per
request in flight, so more Redis connections than concurrent clients is the leak to look for.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from scripts.serve import ENTRY_POINTS, ROOT, function_command
from tests.support.local_redis import RedisServer, free_port

OK_STATUSES = {200, 201, 204, 404}


@dataclass
class Server:
    entry_point: str
    url: str
    port: int
    redis_port: int
    process: subprocess.Popen[bytes]
    requests: int = 0
    resent: int = 0
    errors: list[str] = field(default_factory=list)
    # (t, rss, descriptors other than the clients' and Redis connections, Redis connections)
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors.append(text)
        print(f"error from {self.entry_point}: {text}", flush=True)

    def sample(self, elapsed: float) -> tuple[int, int]:
        root = psutil.Process(self.process.pid)
        tree = [root, *root.children(recursive=True)]
        rss = sum(process.memory_info().rss for process in tree)
        # The clients' own connections come and go with keep-alive; Redis connections are counted
        # apart; any other descriptor (files, the listener) counts. The least of three readings:
        # a connection being opened or closed between two calls is not a leak, and a leak raises
        # all three.
        fds, redis = min(self._descriptors(tree) for _ in range(3))
        self.samples.append((elapsed, rss, fds, redis))
        return rss, fds

    def _descriptors(self, tree: list[psutil.Process]) -> tuple[int, int]:
        """(descriptors other than client and Redis connections, Redis connections)"""
        others = redis = 0
        for process in tree:
            connections = process.net_connections(kind="tcp")
            clients = sum(
                c.laddr.port == self.port and c.status != psutil.CONN_LISTEN for c in connections
            )
            to_redis = sum(bool(c.raddr) and c.raddr.port == self.redis_port for c in connections)
            others += process.num_fds() - clients - to_redis
            redis += to_redis
        time.sleep(0.02)
        return others, redis

    def growth(self) -> tuple[float, float]:
        (_, rss0, fds0, _), (_, rss1, fds1, _) = self.samples[0], self.samples[-1]
        return (rss1 - rss0) / rss0, (fds1 - fds0) / fds0

    def most_redis_connections(self) -> int:
        return max(sample[3] for sample in self.samples)


def start_server(entry_point: str, redis_url: str, log_dir: Path) -> Server:
    redis_port = urlsplit(redis_url).port or 6379
    port = free_port()
    env = {"REDIS_URL": redis_url, "WORKERS": "1", "XDG_RUNTIME_DIR": str(log_dir)}
    log = (log_dir / f"{entry_point}.log").open("wb")
    process = subprocess.Popen(
        function_command(entry_point, port),
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{entry_point} exited; see {log.name}")
        try:
            if httpx.get(f"{url}/health/readiness", timeout=1).status_code == 200:
                return Server(entry_point, url, port, redis_port, process)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{entry_point} was not ready within 60 s; see {log.name}")


async def client(server: Server, number: int, period: float, stop_at: float) -> None:
    """One client: a fixed cycle of operations on its own 50 resources, one every ``period``."""
    # Idle connections are dropped before the servers' 2 s keep-alive ends, as a proxy must.
    limits = httpx.Limits(keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=server.url, timeout=10, limits=limits) as http:
        next_at = time.monotonic()
        for sequence in itertools.count():
            if time.monotonic() >= stop_at:
                return
            request = _request(http, number, sequence)
            try:
                try:
                    response = await http.send(request)
                except (httpx.RemoteProtocolError, httpx.ReadError):
                    # The server closed a kept-alive connection as the request went out, before
                    # any answer (a starved client can hold one past the server's keep-alive).
                    # HTTP lets a client resend then (RFC 9112 9.3.1); counted, not hidden.
                    server.resent += 1
                    response = await http.send(request)
                server.requests += 1
                if response.status_code not in OK_STATUSES:
                    server.error(f"{request.method} {response.status_code} {response.text[:200]}")
            except httpx.TransportError as error:
                server.error(f"{request.method} {type(error).__name__}: {error}")
            # A client that fell behind carries on at its rate: no burst to catch up.
            next_at = max(next_at + period, time.monotonic())
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


def _request(http: httpx.AsyncClient, number: int, sequence: int) -> httpx.Request:
    path = f"/soak/{number}/{sequence % 50}"
    step = sequence % 6
    if step in (0, 3):
        body = {"n": sequence, "text": "x" * (sequence % 512), "list": [1, 2, 3]}
        return http.build_request("PUT", path, json=body)
    if step in (1, 4):
        return http.build_request("GET", path)
    if step == 2:
        return http.build_request("GET", "/", headers={"Accept": "application/json"})
    return http.build_request("DELETE" if sequence % 12 == 5 else "HEAD", path)


async def soak(servers: list[Server], args: argparse.Namespace) -> None:
    started = time.monotonic()
    stop_at = started + args.duration
    period = args.clients * len(servers) / args.rate
    clients = [
        asyncio.create_task(client(server, n, period, stop_at))
        for server in servers
        for n in range(args.clients)
    ]
    for tick in itertools.count(1):
        await asyncio.sleep(max(0.0, started + tick * args.interval - time.monotonic()))
        elapsed = time.monotonic() - started
        for server in servers:
            rss, fds = server.sample(elapsed)
            print(
                f"t={elapsed:6.1f}s {server.entry_point:<12} rss={rss / 2**20:7.1f} MiB "
                f"fds={fds:4d} redis={server.samples[-1][3]:3d} "
                f"requests={server.requests:7d} resent={server.resent} "
                f"errors={len(server.errors)}",
                flush=True,
            )
        if elapsed >= args.duration - 0.5:
            break
    await asyncio.gather(*clients)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=600, help="seconds (default 600)")
    parser.add_argument("--interval", type=float, default=10, help="seconds between samples")
    parser.add_argument("--rate", type=float, default=300, help="requests per second, in all")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients per server")
    parser.add_argument("--entry-point", choices=[*ENTRY_POINTS, "both"], default="both")
    parser.add_argument("--max-growth", type=float, default=0.10, help="0.10 is 10%%")
    parser.add_argument("--out", type=Path, help="write the samples and verdict here as JSON")
    args = parser.parse_args(argv)
    if args.duration < 2 * args.interval:
        parser.error("--duration must cover at least two --interval samples")

    # SIGTERM stops the run like Ctrl-C: the servers and Redis are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    entry_points = list(ENTRY_POINTS) if args.entry_point == "both" else [args.entry_point]
    with (
        tempfile.TemporaryDirectory(prefix="soak-") as scratch,
        RedisServer(Path(scratch) / "redis") as redis_server,
    ):
        servers = [start_server(e, redis_server.function_url, Path(scratch)) for e in entry_points]
        try:
            asyncio.run(soak(servers, args))
        finally:
            for server in servers:
                server.process.terminate()
                server.process.wait(timeout=30)
    return report(servers, args)


def report(servers: list[Server], args: argparse.Namespace) -> int:
    verdict, summary = 0, []
    for server in servers:
        rss_growth, fd_growth = server.growth()
        redis = server.most_redis_connections()
        passed = (
            not server.errors
            and max(rss_growth, fd_growth) < args.max_growth
            and redis <= args.clients
        )
        verdict |= not passed
        print(
            f"{server.entry_point}: {server.requests} requests ({server.resent} resent), "
            f"{len(server.errors)} errors, "
            f"memory {rss_growth:+.1%}, descriptors {fd_growth:+.1%} "
            f"(limit {args.max_growth:.0%}), at most {redis} Redis connections "
            f"(limit {args.clients}, one per client): {'ok' if passed else 'FAILED'}"
        )
        for error in server.errors[:5]:
            print(f"  {error}")
        summary.append(
            {
                "entry_point": server.entry_point,
                "requests": server.requests,
                "resent": server.resent,
                "errors": len(server.errors),
                "rss_growth": rss_growth,
                "fd_growth": fd_growth,
                "most_redis_connections": redis,
                "samples": server.samples,
                "passed": passed,
            }
        )
    if args.out:
        args.out.write_text(json.dumps({"duration": args.duration, "servers": summary}, indent=2))
    return verdict


if __name__ == "__main__":
    sys.exit(main())
