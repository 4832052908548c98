"""`python -m bench.clients`: the Redis clients side by side, in one run, under the same load.

Each candidate runs in a process of its own: one uvloop event loop, ``--concurrency`` tasks that
each await, one after another, the command a GET of ``handle`` sends (``EVALSHA`` of the read
script on one stored key). Measured per candidate: commands per second, the CPU its process spent
per command (every thread of it: glide's Rust core runs beside the event loop), and the CPU Redis
spent per command (Redis's own ``INFO`` counters, ``used_cpu_user`` + ``used_cpu_sys``).

For scale, the same Redis serves plain ``GET``s from ``redis-benchmark -c 16`` (one unpipelined
``GET`` per round trip): its Redis CPU per command is the yardstick the function's cost is
compared with. Rounds alternate the order; the tables show medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis

from bench.cpu import pin
from bench.redis_server import running_redis
from bench.servers import BENCH_DIR
from function.storage import READ_BARE, WRITE, stored_value

KEY = "kv:/bench/resource"
WRITE_KEY = "kv:/bench/put-target"
CANDIDATES = ("redis-py", "redis-py+hiredis", "coredis", "valkey-glide", "shared-hiredis")
# The clients are compared on one read script (GET and PTTL of a key together: the function's
# read before the expiry was kept in the value). The same shared connection then sends other
# commands: what Redis itself spends on each way of storing and reading a document (the function
# now sends a plain GET, and SET ... GET for a PUT).
VARIANTS = ("read-script", "GET", "FCALL", "write-script", "SET-GET")
WRITE_VALUE = b'{"hello":999,"name":"x","last_updated":1700000000}'
EXPIRES_AT_MS = 4_000_000_000_000  # far ahead: the key stays for the whole run
LIBRARY = (
    "#!lua name=bench\nredis.register_function('read', function(keys) "
    + "return {redis.call('GET', keys[1]), redis.call('PTTL', keys[1])} end)"
)
DESCRIPTIONS = {
    "redis-py": "redis-py 8 `redis.asyncio`, pool, pure-Python parser (the function before)",
    "redis-py+hiredis": "redis-py 8 `redis.asyncio`, pool, hiredis parser",
    "coredis": "coredis, pool",
    "valkey-glide": "valkey-glide (Rust core, one multiplexed connection)",
    "shared-hiredis": "one shared pipelined connection on `hiredis.Reader` (redis_conn.py)",
    "shared-hiredis/GET": "shared connection, plain `GET` (no TTL read)",
    "shared-hiredis/FCALL": "shared connection, `FCALL` of the read script as a Redis 7 function",
    "shared-hiredis/write-script": "shared connection, `EVALSHA` of the write script (`?ttl=keep`)",
    "shared-hiredis/SET-GET": "shared connection, `SET key value PXAT expiry GET` (a plain PUT)",
}
Call = Callable[[], Awaitable[Any]]
REDIS_CORE, CLIENT_CORE, LOAD_CORES = 0, 1, set(range(2, 10))


def redis_cpu_seconds(target: redis.Redis | str) -> float:
    """CPU Redis has spent since it started (its own account, ``INFO cpu``), in seconds."""
    if isinstance(target, str):
        with redis.Redis.from_url(target) as client:
            return redis_cpu_seconds(client)
    info = target.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def _make_call(name: str, host: str, port: int, concurrency: int) -> Call:
    args = (READ_BARE.sha, 1, KEY)
    if name in ("redis-py", "redis-py+hiredis"):
        import redis.asyncio
        from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

        parser = _AsyncHiredisParser if name.endswith("hiredis") else _AsyncRESP2Parser
        pool = redis.asyncio.ConnectionPool(
            host=host, port=port, max_connections=concurrency, parser_class=parser
        )
        client = redis.asyncio.Redis(connection_pool=pool)
        return lambda: client.execute_command("EVALSHA", *args)  # type: ignore[no-untyped-call]
    if name == "coredis":
        import coredis

        core = coredis.Redis(host=host, port=port, max_connections=concurrency)
        await core.__aenter__()  # coredis 6 opens its pool inside a context
        return lambda: core.evalsha(READ_BARE.sha, keys=[KEY])
    if name == "valkey-glide":
        from glide import GlideClient, GlideClientConfiguration, NodeAddress, ProtocolVersion

        config = GlideClientConfiguration([NodeAddress(host, port)], protocol=ProtocolVersion.RESP2)
        glide = await GlideClient.create(config)
        glide_command: list[str | bytes] = ["EVALSHA", READ_BARE.sha, "1", KEY]
        return lambda: glide.custom_command(glide_command)
    if name.startswith("shared-hiredis"):
        from function.redis_conn import SharedConnection

        shared = SharedConnection.from_url(
            f"redis://{host}:{port}/0", timeout=5.0, max_pending=concurrency
        )
        command: tuple[Any, ...] = {
            "shared-hiredis": ("EVALSHA", *args),
            "shared-hiredis/GET": ("GET", KEY),
            "shared-hiredis/FCALL": ("FCALL", "read", 1, KEY),
            "shared-hiredis/write-script": (
                "EVALSHA",
                WRITE.sha,
                1,
                WRITE_KEY,
                WRITE_VALUE,
                EXPIRES_AT_MS,
                "",
                "*",
                "",
                0,
            ),
            "shared-hiredis/SET-GET": (
                "SET",
                WRITE_KEY,
                stored_value(WRITE_VALUE, EXPIRES_AT_MS),
                "PXAT",
                EXPIRES_AT_MS,
                "GET",
            ),
        }[name]
        return lambda: shared.execute_command(*command)
    raise ValueError(f"unknown candidate {name!r}")


async def _drive(call: Call, concurrency: int, seconds: float) -> int:
    done = 0
    stop_at = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            await call()
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def measure_one(name: str, url: str, concurrency: int, seconds: float) -> dict[str, float]:
    """In this process: warm up, then drive the candidate for ``seconds``."""
    import uvloop

    options = redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    host, port = options.get("host", "127.0.0.1"), int(options.get("port", 6379))

    async def run() -> dict[str, float]:
        call = await _make_call(name, host, port, concurrency)
        await _drive(call, concurrency, min(1.0, seconds / 4))  # warm-up: connections, caches
        with redis.Redis.from_url(url) as probe:
            redis_before = redis_cpu_seconds(probe)
            cpu_before, wall_before = time.process_time(), time.monotonic()
            done = await _drive(call, concurrency, seconds)
            cpu = time.process_time() - cpu_before
            wall = time.monotonic() - wall_before
            redis_cpu = redis_cpu_seconds(probe) - redis_before
        return {
            "ops_per_second": done / wall,
            "client_us_per_op": cpu / done * 1e6,
            "redis_us_per_op": redis_cpu / done * 1e6,
        }

    return uvloop.run(run())


def redis_benchmark_get(url: str, seconds: float) -> dict[str, float] | None:
    """Redis's CPU per plain, unpipelined GET under ``redis-benchmark -c 16``; None without it."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    options = redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    with redis.Redis.from_url(url) as probe:
        probe.set("key:__rand_int__", b"x" * 32)
        requests = 20_000
        while True:  # size the run to about ``seconds``
            before, started = redis_cpu_seconds(probe), time.monotonic()
            subprocess.run(
                [binary, "-h", options.get("host", "127.0.0.1"), "-p", str(options["port"]),
                 "-c", "16", "-n", str(requests), "-t", "get", "-q"],
                check=True, capture_output=True,
            )  # fmt: skip
            wall = time.monotonic() - started
            if wall >= seconds / 2 or requests >= 5_000_000:
                break
            requests = int(requests * seconds / max(wall, 0.05))
        redis_cpu = redis_cpu_seconds(probe) - before
    return {
        "ops_per_second": requests / wall,
        "client_us_per_op": float("nan"),
        "redis_us_per_op": redis_cpu / requests * 1e6,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clients", description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0, help="per candidate and round (4)")
    parser.add_argument("--concurrency", type=int, default=16, help="tasks in the loop (16)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (3)")
    parser.add_argument("--only", default="", help="comma-separated candidates (default: all)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="Redis on CPU 0, the client on CPU 1, redis-benchmark on CPUs 2-9",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one, print JSON
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        if args.pin:
            os.sched_setaffinity(0, {CLIENT_CORE})  # before any thread of the client starts
        print(json.dumps(measure_one(args.one, args.url, args.concurrency, args.seconds)))
        return 0
    every = [*CANDIDATES, *(f"shared-hiredis/{v}" for v in VARIANTS[1:])]
    chosen = [c for c in every if not args.only or c in args.only.split(",")]
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in [*chosen, "GET"]}
    if args.pin:
        os.sched_setaffinity(0, LOAD_CORES)
    with running_redis() as server:
        if args.pin:
            pin(server.pid, {REDIS_CORE})
        with redis.Redis.from_url(server.url) as seed:
            seed.set(KEY, b'{"hello":999,"name":"x"}\n1700000000', ex=3600)
            seed.script_load(READ_BARE.source)
            seed.script_load(WRITE.source)
            if int(seed.info("server")["redis_version"].split(".")[0]) >= 7:
                seed.function_load(LIBRARY, replace=True)
            elif "shared-hiredis/FCALL" in chosen:
                chosen.remove("shared-hiredis/FCALL")  # Redis 6 has no functions
        for round_index in range(args.rounds):
            order = chosen if round_index % 2 == 0 else chosen[::-1]
            for name in order:
                result = subprocess.run(
                    [sys.executable, "-m", "bench.clients", "--one", name, "--url", server.url,
                     "--concurrency", str(args.concurrency), "--seconds", str(args.seconds),
                     *(["--pin"] if args.pin else [])],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                sample = json.loads(result.stdout.strip().splitlines()[-1])
                samples[name].append(sample)
                print(f"{name:<18} round {round_index + 1}: {_line(sample)}", flush=True)
            reference = redis_benchmark_get(server.url, args.seconds)
            if reference is not None:
                samples["GET"].append(reference)
                print(f"{'redis-benchmark':<18} round {round_index + 1}: {_line(reference)}")
    table = render(samples, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "clients.md").write_text(table)
    (args.out / "clients.json").write_text(json.dumps(samples, indent=2) + "\n")
    print()
    print(table)
    return 0


def _line(sample: dict[str, float]) -> str:
    return (
        f"{sample['ops_per_second']:>9,.0f} ops/s  client {sample['client_us_per_op']:6.1f} µs/op"
        f"  Redis {sample['redis_us_per_op']:5.2f} µs/op"
    )


def _median(samples: list[dict[str, float]], field: str) -> float:
    return statistics.median(sample[field] for sample in samples)


def render(samples: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> str:
    lines = [
        f"One uvloop event loop, {args.concurrency} tasks each awaiting `EVALSHA` of the read "
        f"script; {args.seconds:g} s per cell, medians of {args.rounds} alternated rounds.",
        "",
        "| client | ops/s | client CPU per op | Redis CPU per op |",
        "|---|---|---|---|",
    ]
    for name in samples:
        if not samples[name]:
            continue
        label = "plain `GET`, `redis-benchmark -c 16`" if name == "GET" else DESCRIPTIONS[name]
        client_us = _median(samples[name], "client_us_per_op")
        lines.append(
            f"| {label} | {_median(samples[name], 'ops_per_second'):,.0f} | "
            + ("-" if client_us != client_us else f"{client_us:.1f} µs")
            + f" | {_median(samples[name], 'redis_us_per_op'):.2f} µs |"
        )
    library = [
        n for n in ("redis-py", "redis-py+hiredis", "coredis", "valkey-glide") if n in samples
    ]
    if "shared-hiredis" in samples and samples["shared-hiredis"] and library:
        best = max(
            library, key=lambda n: _median(samples[n], "ops_per_second") if samples[n] else 0
        )
        if samples[best]:
            ratio = _median(samples["shared-hiredis"], "ops_per_second") / _median(
                samples[best], "ops_per_second"
            )
            lines += ["", f"Shared connection / best library ({best}): {ratio:.1f}x ops/s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
