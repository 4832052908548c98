"""`python -m bench`: one run, one Redis, each server alone on the machine in turn.

For every server: start it a few times (spawn to first 200), keep the last one, seed a resource,
check that every scenario answers 2xx, then per scenario a short warm-up and a timed hey run;
finally the memory of its process tree (RSS and PSS summed), and stop it. Before the starts and
each cell it waits (briefly) for other processes to leave the CPU, and it records how much CPU they
took during each cell. With --rounds N the servers are measured N times in alternating order and
the tables show medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench import cpu
from bench.clients import redis_benchmark_get, redis_cpu_seconds
from bench.hey import LoadRequest, require_hey, run_hey
from bench.redis_server import BenchRedis, running_redis
from bench.report import (
    DISTURBED_CORES,
    Cell,
    RunResults,
    ServerFootprint,
    check_targets,
    combine_footprints,
    combine_rounds,
    describe_machine,
    render_markdown,
    write_results,
)
from bench.servers import (
    BENCH_DIR,
    SERVER_NAMES,
    SERVERS,
    RunningServer,
    ServerFailedError,
    ServerSpec,
    request_once,
    start_server,
)
from tests.support.local_redis import free_port

# The article's store keeps a hash of flat strings, so every server gets the same flat body.
PUT_BODY = json.dumps({"hello": 999, "name": "x"})
STORED_PATH = "/bench/resource"
PUT_PATH = "/bench/put-target"
# With --pin: one core for Redis, one for the server under test, the rest of ten for the load.
REDIS_CORE, SERVER_CORE, LOAD_CORES = 0, 1, set(range(2, 10))


@dataclass(frozen=True)
class Scenario:
    name: str
    slug: str
    method: str
    path: str
    body: str | None = None


SCENARIOS = (
    Scenario("GET", "get", "GET", STORED_PATH),
    Scenario("PUT", "put", "PUT", PUT_PATH, PUT_BODY),
    Scenario("GET /", "get-root", "GET", "/"),
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per cell (8)")
    parser.add_argument("--concurrency", type=int, default=16, help="open connections (16)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell (1)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every server this many times, in alternating order, and report medians (1)",
    )
    parser.add_argument(
        "--starts", type=int, default=3, help="spawns per server for start-to-first-200 (3)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SERVER[,SERVER]",
        help=f"servers to run, from: {', '.join(SERVER_NAMES)} (default: all)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="before the starts and each cell, wait up to this long for other processes to "
        "leave the CPU (20; 0: do not wait)",
    )
    parser.add_argument(
        "--out", type=Path, default=BENCH_DIR / "results", help="directory for results"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help=f"a core each: Redis on CPU {REDIS_CORE}, the server on CPU {SERVER_CORE}, hey and "
        f"the bench on CPUs {min(LOAD_CORES)}-{max(LOAD_CORES)} (needs {max(LOAD_CORES) + 1} CPUs)",
    )
    parser.add_argument(
        "--require-targets",
        action="store_true",
        help="exit with status 1 when a measured target does not hold",
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1 or args.starts < 1 or args.rounds < 1:
        parser.error("--duration and --concurrency must be positive, --starts and --rounds >= 1")
    if args.warmup < 0 or args.quiet_wait < 0:
        parser.error("--warmup and --quiet-wait cannot be negative")
    selected = {name.strip() for value in args.only for name in value.split(",") if name.strip()}
    unknown = selected - set(SERVER_NAMES)
    if unknown:
        parser.error(f"unknown server(s) {sorted(unknown)}; choose from {', '.join(SERVER_NAMES)}")
    args.servers = [spec for spec in SERVERS if not selected or spec.name in selected]
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    require_hey()
    logs_dir = args.out / "logs"
    raw_dir = args.out / "raw"
    logs_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(raw_dir, ignore_errors=True)  # hey's output of this run only
    began = time.monotonic()
    if args.pin:
        os.sched_setaffinity(0, LOAD_CORES)  # hey and whatever else this process starts

    with running_redis() as redis:
        if args.pin:
            cpu.pin(redis.pid, {REDIS_CORE})
        results = RunResults(
            machine=describe_machine(redis.version),
            settings={
                "duration_s": f"{args.duration:g}",
                "concurrency": str(args.concurrency),
                "warmup_s": f"{args.warmup:g}",
                "starts": str(args.starts),
                "rounds": str(args.rounds),
            },
            cells=[],
            footprints=[],
            round_cells=[],
        )
        footprints: dict[str, list[ServerFootprint]] = {}
        plain_get_samples: list[float] = []
        for log_path in logs_dir.glob("*.log"):
            log_path.unlink()
        for round_index in range(args.rounds):
            # Alternate the order so that a drift in machine speed does not favour one server.
            order = args.servers if round_index % 2 == 0 else args.servers[::-1]
            for spec in order:
                log_path = logs_dir / f"{spec.name}.log"
                print(f"== {spec.name} (round {round_index + 1}): {spec.description}", flush=True)
                try:
                    cells, footprint = measure_server(
                        spec, redis, log_path, raw_dir / f"round-{round_index + 1}", args
                    )
                except ServerFailedError as failure:
                    raise SystemExit(
                        f"{spec.name} failed: {failure}\n(full log: {log_path})"
                    ) from None
                results.round_cells += cells
                footprints.setdefault(spec.name, []).append(footprint)
            plain = redis_benchmark_get(redis.url, args.duration)
            if plain is not None:
                plain_get_samples.append(plain["redis_us_per_op"])
                print(
                    f"== redis-benchmark GET -c 16: {plain['redis_us_per_op']:.1f} µs/op in Redis"
                )
        if plain_get_samples:
            results.plain_get_redis_us = statistics.median(plain_get_samples)
        for spec in args.servers:
            results.footprints.append(combine_footprints(footprints[spec.name]))
            for scenario in SCENARIOS:
                same_cell = [
                    c
                    for c in results.round_cells
                    if c.server == spec.name and c.scenario == scenario.name
                ]
                results.cells.append(combine_rounds(same_cell))

    checks = check_targets(results)
    markdown = render_markdown(results, checks)
    markdown_path, json_path = write_results(args.out, results, checks, markdown)
    print()
    print(markdown)
    print(f"written: {markdown_path} and {json_path} ({time.monotonic() - began:.0f} s in all)")
    if args.require_targets and any(check.holds is False for check in checks):
        return 1
    return 0


def measure_server(
    spec: ServerSpec, redis: BenchRedis, log_path: Path, raw_dir: Path, args: argparse.Namespace
) -> tuple[list[Cell], ServerFootprint]:
    raw_dir.mkdir(parents=True, exist_ok=True)
    start_samples: list[float] = []
    server: RunningServer | None = None
    wait_until_quiet(args, [redis.pid])
    for attempt in range(args.starts):
        server = start_server(spec, free_port(), redis.url, log_path)
        start_samples.append(server.seconds_to_first_200)
        if attempt < args.starts - 1:
            server.stop()
    assert server is not None  # args.starts >= 1
    if args.pin:
        cpu.pin(server.process.pid, {SERVER_CORE})
    print(f"   start to first 200: {', '.join(f'{s:.2f}' for s in start_samples)} s", flush=True)
    try:
        prepare(server)
        cells = []
        for scenario in SCENARIOS:
            request = LoadRequest(
                method=scenario.method,
                url=server.base_url + scenario.path,
                body=scenario.body,
                content_type="application/json" if scenario.body is not None else None,
            )
            tracked = (server.process.pid, redis.pid)
            wait_until_quiet(args, tracked)
            if args.warmup > 0:
                run_hey(request, duration_seconds=args.warmup, concurrency=args.concurrency)
            before = cpu.snapshot(tracked)
            redis_before = redis_cpu_seconds(redis.url)
            load, raw = run_hey(
                request, duration_seconds=args.duration, concurrency=args.concurrency
            )
            redis_cpu = redis_cpu_seconds(redis.url) - redis_before
            foreign = cpu.foreign_cores(before, cpu.snapshot(tracked))
            (raw_dir / f"{spec.name}-{scenario.slug}.txt").write_text(raw)
            cell = Cell.from_load(spec.name, scenario.name, load, foreign, redis_cpu)
            print(
                f"   {scenario.name:<6} {cell.requests_per_second:>9,.0f} req/s  "
                f"p50 {_ms(cell.p50_ms)} ms  p99 {_ms(cell.p99_ms)} ms  errors {cell.errors}  "
                f"Redis {_ms(cell.redis_us_per_request)} µs/req  "
                f"other CPU {foreign:.0%} of a core",
                flush=True,
            )
            cells.append(cell)
        memory = server.memory()
    finally:
        server.stop()
    footprint = ServerFootprint(
        server=spec.name,
        description=spec.description,
        start_samples_s=start_samples,
        resident_bytes=memory.rss_bytes,
        proportional_bytes=memory.pss_bytes,
        processes=memory.processes,
    )
    return cells, footprint


def wait_until_quiet(args: argparse.Namespace, tracked_pids: Iterable[int]) -> None:
    if args.quiet_wait > 0:
        cpu.wait_until_quiet(
            tracked_pids, threshold_cores=DISTURBED_CORES, max_wait_seconds=args.quiet_wait
        )


def prepare(server: RunningServer) -> None:
    """Store the resource the GET cells read, then check every scenario answers 2xx once."""
    requests: list[tuple[str, str, str | None]] = [("PUT", STORED_PATH, PUT_BODY)]
    requests += [(s.method, s.path, s.body) for s in SCENARIOS]
    for method, path, body in requests:
        status, payload = request_once(server.base_url, method, path, body)
        if not 200 <= status < 300:
            raise ServerFailedError(
                f"{method} {path} answered {status} before the load: {payload[:300]!r}\n"
                + server.log_tail()
            )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
