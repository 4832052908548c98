"""Results of one run: the tables, the target checks and the files they are written to."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from bench.hey import LoadResult

MEGABYTE = 1_000_000
# Above this share of a core used by other processes during a cell, its figures are suspect.
DISTURBED_CORES = 0.15


@dataclass(frozen=True)
class Cell:
    server: str
    scenario: str
    requests_per_second: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    responses: int
    status_counts: dict[int, int]
    transport_errors: dict[str, int]
    foreign_cores: float  # CPU other processes used meanwhile, in cores (the most of any round)
    rounds: int = 1
    # Redis's own CPU (INFO used_cpu_user + used_cpu_sys) over the cell, per response.
    redis_us_per_request: float | None = None

    @property
    def disturbed(self) -> bool:
        return self.foreign_cores > DISTURBED_CORES

    @classmethod
    def from_load(
        cls,
        server: str,
        scenario: str,
        load: LoadResult,
        foreign: float,
        redis_cpu_seconds: float | None = None,
    ) -> Cell:
        responses = sum(load.status_counts.values())
        return cls(
            server=server,
            scenario=scenario,
            requests_per_second=load.requests_per_second,
            p50_ms=None if load.p50_seconds is None else load.p50_seconds * 1000,
            p99_ms=None if load.p99_seconds is None else load.p99_seconds * 1000,
            errors=load.errors,
            responses=responses,
            status_counts=load.status_counts,
            transport_errors=load.transport_errors,
            foreign_cores=foreign,
            redis_us_per_request=(
                redis_cpu_seconds / responses * 1e6
                if redis_cpu_seconds is not None and responses
                else None
            ),
        )


def combine_rounds(cells: list[Cell]) -> Cell:
    """The same cell measured in several rounds: medians of the figures, sums of the counts."""
    first = cells[0]
    if len(cells) == 1:
        return first
    status_counts: Counter[int] = Counter()
    transport_errors: Counter[str] = Counter()
    for cell in cells:
        status_counts.update(cell.status_counts)
        transport_errors.update(cell.transport_errors)
    return Cell(
        server=first.server,
        scenario=first.scenario,
        requests_per_second=statistics.median(c.requests_per_second for c in cells),
        p50_ms=_median_of_known([c.p50_ms for c in cells]),
        p99_ms=_median_of_known([c.p99_ms for c in cells]),
        errors=sum(c.errors for c in cells),
        responses=sum(c.responses for c in cells),
        status_counts=dict(status_counts),
        transport_errors=dict(transport_errors),
        foreign_cores=max(c.foreign_cores for c in cells),
        rounds=len(cells),
        redis_us_per_request=_median_of_known([c.redis_us_per_request for c in cells]),
    )


def _median_of_known(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


@dataclass(frozen=True)
class ServerFootprint:
    server: str
    description: str
    start_samples_s: list[float]
    resident_bytes: int  # RSS summed over the process tree: what the target is about
    proportional_bytes: int  # PSS summed: shared pages counted once
    processes: int

    @property
    def start_median_s(self) -> float:
        return statistics.median(self.start_samples_s)


def combine_footprints(footprints: list[ServerFootprint]) -> ServerFootprint:
    """Every start sample of every round; the largest memory seen."""
    first = footprints[0]
    return ServerFootprint(
        server=first.server,
        description=first.description,
        start_samples_s=[s for f in footprints for s in f.start_samples_s],
        resident_bytes=max(f.resident_bytes for f in footprints),
        proportional_bytes=max(f.proportional_bytes for f in footprints),
        processes=max(f.processes for f in footprints),
    )


@dataclass(frozen=True)
class TargetCheck:
    target: str
    measured: str
    required: str
    holds: bool | None  # None: a server it needs was not measured in this run


@dataclass
class RunResults:
    machine: dict[str, str]
    settings: dict[str, str]
    cells: list[Cell]  # one per server and scenario, rounds combined
    footprints: list[ServerFootprint]  # one per server, rounds combined
    round_cells: list[Cell]  # every round's own figures
    # Redis's CPU per plain unpipelined GET under redis-benchmark -c 16, medians over rounds.
    plain_get_redis_us: float | None = None

    def cell(self, server: str, scenario: str) -> Cell | None:
        return next((c for c in self.cells if c.server == server and c.scenario == scenario), None)

    def footprint(self, server: str) -> ServerFootprint | None:
        return next((f for f in self.footprints if f.server == server), None)


def describe_machine(redis_version: str) -> dict[str, str]:
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": _cpu_model(),
        # Other work on the machine skews every figure; this shows how busy it was at the start.
        "load_average_1m_at_start": f"{os.getloadavg()[0]:.2f}",
        "python": platform.python_version(),
        "redis_server": redis_version,
        "hey": _debian_package_version("hey"),
        **{name: _package_version(name) for name in _PACKAGES},
    }


_PACKAGES = (
    "functions-framework",
    "redis",
    "hiredis",
    "Flask",
    "gunicorn",
    "uvicorn",
    "uvloop",
    "httptools",
)


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _debian_package_version(package: str) -> str:
    try:
        return subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def check_targets(results: RunResults) -> list[TargetCheck]:
    checks: list[TargetCheck] = []
    for scenario in ("GET", "PUT"):
        handle = results.cell("handle", scenario)
        baseline = results.cell("baseline", scenario)
        if handle is None or baseline is None or not baseline.requests_per_second:
            checks.append(_not_measured(f"handle {scenario} req/s vs baseline", ">= 10x"))
            checks.append(_not_measured(f"handle {scenario} p99 vs baseline", "<= 1/6"))
            continue
        throughput = handle.requests_per_second / baseline.requests_per_second
        checks.append(
            TargetCheck(
                f"handle {scenario} req/s vs baseline",
                f"{throughput:.1f}x ({handle.requests_per_second:,.0f} vs "
                f"{baseline.requests_per_second:,.0f}){_flag(handle, baseline)}",
                ">= 10x",
                throughput >= 10,
            )
        )
        if handle.p99_ms is None or not baseline.p99_ms:
            checks.append(_not_measured(f"handle {scenario} p99 vs baseline", "<= 1/6"))
            continue
        latency = handle.p99_ms / baseline.p99_ms
        checks.append(
            TargetCheck(
                f"handle {scenario} p99 vs baseline",
                f"{latency:.2f}x ({handle.p99_ms:.1f} vs {baseline.p99_ms:.1f} ms)"
                f"{_flag(handle, baseline)}",
                "<= 1/6",
                latency <= 1 / 6,
            )
        )

    ceiling = results.cell("noop", "GET")
    for scenario in ("GET", "PUT"):
        handle = results.cell("handle", scenario)
        target = f"handle {scenario} req/s vs framework ceiling"
        if handle is None or ceiling is None or not ceiling.requests_per_second:
            checks.append(_not_measured(target, ">= 65%"))
            continue
        share = handle.requests_per_second / ceiling.requests_per_second
        checks.append(
            TargetCheck(
                target,
                f"{share:.0%} ({handle.requests_per_second:,.0f} vs "
                f"{ceiling.requests_per_second:,.0f}){_flag(handle, ceiling)}",
                ">= 65%",
                share >= 0.65,
            )
        )
    for scenario in ("GET", "PUT"):
        handle = results.cell("handle", scenario)
        target = f"handle {scenario}: Redis CPU per request vs a plain GET"
        plain = results.plain_get_redis_us
        if handle is None or handle.redis_us_per_request is None or not plain:
            checks.append(_not_measured(target, "<= 80%"))
            continue
        share = handle.redis_us_per_request / plain
        checks.append(
            TargetCheck(
                target,
                f"{share:.0%} ({handle.redis_us_per_request:.1f} vs {plain:.1f} µs)",
                "<= 80%",
                share <= 0.80,
            )
        )
    counter, read = results.cell("handle", "GET /"), results.cell("handle", "GET")
    if counter is None or read is None or not read.requests_per_second:
        checks.append(_not_measured("handle GET / req/s vs GET", ">= 95%"))
    else:
        share = counter.requests_per_second / read.requests_per_second
        checks.append(
            TargetCheck(
                "handle GET / req/s vs GET",
                f"{share:.0%} ({counter.requests_per_second:,.0f} vs "
                f"{read.requests_per_second:,.0f}){_flag(counter, read)}",
                ">= 95%",
                share >= 0.95,
            )
        )

    footprint = results.footprint("handle")
    if footprint is None:
        checks.append(_not_measured("handle start to first 200", "< 1 s"))
        checks.append(_not_measured("handle process tree RSS", "< 100 MB"))
    else:
        checks.append(
            TargetCheck(
                "handle start to first 200",
                f"{footprint.start_median_s:.2f} s (median; slowest "
                f"{max(footprint.start_samples_s):.2f} s)",
                "< 1 s",
                footprint.start_median_s < 1.0,
            )
        )
        checks.append(
            TargetCheck(
                "handle process tree RSS",
                f"{footprint.resident_bytes / MEGABYTE:.0f} MB ({footprint.processes} processes)",
                "< 100 MB",
                footprint.resident_bytes < 100 * MEGABYTE,
            )
        )
    return checks


def _flag(*cells: Cell) -> str:
    return " (!)" if any(cell.disturbed for cell in cells) else ""


def _not_measured(target: str, required: str) -> TargetCheck:
    return TargetCheck(target, "not measured", required, None)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_markdown(results: RunResults, checks: list[TargetCheck]) -> str:
    settings = results.settings
    machine = results.machine
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), Python {machine['python']}, "
        f"redis-server {machine['redis_server']}, hey {machine['hey']}; load generator, servers "
        "and Redis share the machine (1-minute load average at the start: "
        f"{machine['load_average_1m_at_start']}).",
        f"Load: `hey -z {settings['duration_s']}s -c {settings['concurrency']}` per cell, after "
        f"{settings['warmup_s']} s of warm-up; one server process tree at a time; one Redis; "
        f"{settings['rounds']} round(s) over all servers"
        + (", figures are the median of the rounds." if settings["rounds"] != "1" else "."),
        "req/s counts 2xx responses only; errors are non-2xx responses plus requests that got "
        "no response.",
        "",
        "other CPU: what processes outside the benchmark used during the cell, in % of one core.",
        "",
        "Redis µs/req: Redis's own CPU (INFO) over the cell per response; pods per Redis core: "
        "how many one-process pods at this req/s one Redis core can serve (1 s / that / req/s).",
        "",
        "| server | scenario | req/s | p50 ms | p99 ms | errors | other CPU "
        "| Redis µs/req | pods per Redis core |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {c.server} | {c.scenario} | {c.requests_per_second:,.0f} | {_ms(c.p50_ms)} "
        f"| {_ms(c.p99_ms)} | {c.errors} | {c.foreign_cores:.0%}{' (!)' if c.disturbed else ''} "
        f"| {_us(c.redis_us_per_request)} | {_pods(c)} |"
        for c in results.cells
    ]
    if results.plain_get_redis_us:
        lines += [
            "",
            f"Plain unpipelined `GET` (`redis-benchmark -c 16`, same Redis): Redis spends "
            f"{results.plain_get_redis_us:.1f} µs of CPU per command.",
        ]
    disturbed = [c for c in results.cells if c.disturbed]
    if disturbed:
        lines += [
            "",
            f"(!) {len(disturbed)} cell(s) ran while other processes used more than "
            f"{DISTURBED_CORES:.0%} of a core: their figures, and the targets that use them, are "
            "not to be trusted; rerun on a quiet machine.",
        ]
    starts = int(settings["starts"]) * int(settings["rounds"])
    lines += [
        "",
        f"| server | start to first 200 (median of {starts}) "
        "| slowest start "
        "| RSS, process tree | PSS, process tree | processes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {f.server} | {f.start_median_s:.2f} s | {max(f.start_samples_s):.2f} s "
        f"| {f.resident_bytes / MEGABYTE:.0f} MB | {f.proportional_bytes / MEGABYTE:.0f} MB "
        f"| {f.processes} |"
        for f in results.footprints
    ]
    lines += ["", "| target | measured | required | holds |", "|---|---|---|---|"]
    lines += [f"| {c.target} | {c.measured} | {c.required} | {_verdict(c.holds)} |" for c in checks]
    lines += ["", "Servers:"]
    lines += [f"- {f.server}: {f.description}" for f in results.footprints]
    return "\n".join(lines) + "\n"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _pods(cell: Cell) -> str:
    if not cell.redis_us_per_request or not cell.requests_per_second:
        return "-"
    return f"{1e6 / cell.redis_us_per_request / cell.requests_per_second:.0f}"


def _verdict(holds: bool | None) -> str:
    return {True: "yes", False: "NO", None: "n/a"}[holds]


def write_results(
    out_dir: Path, results: RunResults, checks: list[TargetCheck], markdown: str
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown_path = out_dir / "results.md"
    json_path = out_dir / "results.json"
    markdown_path.write_text(markdown)
    document = {
        "machine": results.machine,
        "settings": results.settings,
        "cells": [asdict(c) for c in results.cells],
        "round_cells": [asdict(c) for c in results.round_cells],
        "servers": [{**asdict(f), "start_median_s": f.start_median_s} for f in results.footprints],
        "targets": [asdict(c) for c in checks],
        "plain_get_redis_us": results.plain_get_redis_us,
    }
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    return markdown_path, json_path
