"""``python -m loadtest predict``: what Knative's autoscaler would do with a measured load.

Reads the per-second in-flight concurrency of a timeline (or a load profile) and the Service's
autoscaling settings, runs the model second by second and writes DIR/prediction.csv,
DIR/prediction.png and DIR/summary.txt (also printed).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtest.errors import UsageError
from loadtest.kpa import plot, report
from loadtest.kpa.load import CLIENT, SEEN, Load, LoadError, from_profile, read_timeline
from loadtest.kpa.settings import (
    GROUP,
    AutoscalerConfig,
    Settings,
    SettingsError,
    load_config_autoscaler,
    load_service,
)
from loadtest.kpa.simulation import Prediction, Start, predict
from loadtest.profiles import Level, resolve

CSV_COLUMNS = (
    "second",
    "in_flight_mean",
    "desired_pods",
    "ready_pods",
    "panic",
    "activator_in_path",
)
DEFAULT_SERVICE = Path("k8s/knative-service.yaml")
# Seconds from a pod being asked for to its readiness: scheduling, the two containers, the
# function's start (0.46 s in the benchmark) and the queue-proxy's first successful probe.
# An assumption for a node that already holds the image; measure yours and pass it.
DEFAULT_POD_START_S = 5.0
# Redis CPU per request when neither a figure nor bench results are given: one plain command sent
# on its own (a pod under light load sends them one at a time), which the benchmark measures at
# 8.6 µs on a dedicated core (redis-benchmark's unpipelined GET); pipelined under load, less.
DEFAULT_REDIS_US_PER_REQUEST = 9.0
DEFAULT_REDIS_SOURCE = "one unpipelined command, as the benchmark measures it"
# Fallbacks when neither the Service file's comments nor the options give the pod's figures.
FALLBACK_REQUEST_MS = 5.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest predict",
        description="Predict, second by second, what Knative's Pod Autoscaler (KPA) would do "
        "with a load, from the Service's autoscaling settings.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--timeline", type=Path, help="CSV with the columns second and in_flight_mean"
    )
    source.add_argument(
        "--profile", help="a load profile instead: steady, step, spike or a JSON/YAML stage file"
    )
    parser.add_argument(
        "--concurrency",
        choices=(SEEN, CLIENT),
        help="of a timeline: client, in_flight_mean (default); seen, in_pods_mean where the "
        "pods reported (what their queue-proxies count), else in_flight_mean",
    )
    level = parser.add_mutually_exclusive_group()
    level.add_argument("--users", type=int, help="peak users of a built-in profile")
    level.add_argument("--rate", type=float, help="peak requests/s of a built-in profile")
    parser.add_argument("--duration", type=int, help="seconds of a profile")
    parser.add_argument("--service", type=Path, default=DEFAULT_SERVICE, help="Knative Service")
    parser.add_argument("--out", type=Path, required=True, help="directory for the results")
    parser.add_argument(
        "--pod-start-seconds",
        type=float,
        default=DEFAULT_POD_START_S,
        help=f"from asking for a pod to its readiness (default {DEFAULT_POD_START_S:g})",
    )
    parser.add_argument(
        "--config-autoscaler", type=Path, help="config-autoscaler ConfigMap file (cluster defaults)"
    )
    parser.add_argument(
        "--annotation",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a template annotation, e.g. target-burst-capacity=0 (what-ifs; repeatable)",
    )
    parser.add_argument(
        "--start-pods", type=int, default=0, help="ready pods at second 0 (default 0: idle)"
    )
    parser.add_argument(
        "--new-revision",
        action="store_true",
        help="start from a revision just created, with initial-scale pods starting",
    )
    advice = parser.add_argument_group("recommendation")
    advice.add_argument("--latency-goal-ms", type=float, help="suggest settings for this goal")
    advice.add_argument("--capacity-rps", type=float, help="requests/s one pod serves")
    advice.add_argument(
        "--request-ms", type=float, help="time a request spends in the pod at that load"
    )
    advice.add_argument("--bench-results", type=Path, help="bench/results/results.json")
    advice.add_argument(
        "--redis-us-per-request",
        type=float,
        help="Redis CPU per request in µs (default: handle's from --bench-results, else "
        f"{DEFAULT_REDIS_US_PER_REQUEST:g}, one unpipelined command)",
    )
    return parser


def _service_figures(path: Path) -> tuple[float | None, float | None]:
    """capacity-rps and latency-seconds as written beside the target in the Service file."""
    try:
        text = path.read_text()
    except OSError:
        return None, None
    capacity = re.search(r"capacity-rps:\s*([\d.]+)", text)
    latency = re.search(r"latency-seconds:\s*([\d.]+)", text)
    return (
        float(capacity.group(1)) if capacity else None,
        float(latency.group(1)) if latency else None,
    )


def _bench_cells(path: Path) -> list[dict[str, Any]]:
    """handle's GET and PUT cells of a bench results.json, or why there are none."""
    try:
        document = json.loads(path.read_text())
        cells = [
            cell
            for cell in document["cells"]
            if cell["server"] == "handle" and cell["scenario"] in ("GET", "PUT")
        ]
    except OSError as error:
        raise UsageError(f"cannot read bench results {path}: {error.strerror}") from None
    except (ValueError, KeyError, TypeError):
        cells = []
    if not cells:
        raise UsageError(
            f"bench results {path}: expected results.json with handle GET and PUT cells"
        )
    return cells


def _bench_capacity(path: Path) -> report.Capacity:
    try:
        slowest = min(_bench_cells(path), key=lambda cell: cell["requests_per_second"])
        rps, p50_ms = float(slowest["requests_per_second"]), float(slowest["p50_ms"])
    except (ValueError, KeyError, TypeError):
        raise UsageError(
            f"bench results {path}: expected results.json with handle GET and PUT cells"
        ) from None
    source = f"{path}: handle {slowest['scenario']}, one process on the bench machine"
    return report.Capacity(rps, p50_ms / 1000, source)


def _redis_cost(args: argparse.Namespace) -> tuple[float, str]:
    """Redis CPU per request in µs, and where the figure comes from."""
    if args.redis_us_per_request is not None:
        if args.redis_us_per_request <= 0:
            raise UsageError("--redis-us-per-request must be positive")
        return args.redis_us_per_request, "given"
    if args.bench_results is not None:
        measured = [
            (float(cell["redis_us_per_request"]), cell["scenario"])
            for cell in _bench_cells(args.bench_results)
            if isinstance(cell.get("redis_us_per_request"), int | float)
        ]
        if measured:
            cost, scenario = max(measured)
            return cost, f"{args.bench_results}: handle {scenario}, measured by the benchmark"
    return DEFAULT_REDIS_US_PER_REQUEST, DEFAULT_REDIS_SOURCE


def _capacity(args: argparse.Namespace) -> report.Capacity:
    if args.bench_results is not None:
        capacity = _bench_capacity(args.bench_results)
        if args.request_ms is not None:
            return report.Capacity(capacity.requests_per_second, args.request_ms / 1000, "given")
        return capacity
    service_rps, service_latency = _service_figures(args.service)
    rps = args.capacity_rps if args.capacity_rps is not None else service_rps
    seconds = args.request_ms / 1000 if args.request_ms is not None else service_latency
    if rps is None or seconds is None:
        raise UsageError(
            "a recommendation needs --capacity-rps and --request-ms, or --bench-results"
        )
    given = args.capacity_rps is not None and args.request_ms is not None
    source = "given" if given else f"capacity-rps and latency-seconds in {args.service}"
    return report.Capacity(rps, seconds, source)


def _load(args: argparse.Namespace) -> Load:
    if args.timeline is not None:
        if args.users is not None or args.rate is not None or args.duration is not None:
            raise UsageError("--users, --rate and --duration go with --profile, not --timeline")
        return read_timeline(args.timeline, args.concurrency or CLIENT)
    if args.concurrency is not None:
        raise UsageError("--concurrency goes with --timeline: a profile gives one concurrency")
    level = None
    if args.users is not None or args.rate is not None:
        level = Level(users=args.users, rate=args.rate)
    profile = resolve(args.profile, args.duration, level)
    _, service_latency = _service_figures(args.service)
    if args.request_ms is not None:
        request_s = args.request_ms / 1000
    else:
        request_s = service_latency or FALLBACK_REQUEST_MS / 1000
    load = from_profile(profile, request_s)
    peak = f"{args.users} users" if args.users else f"{args.rate:g} req/s" if args.rate else ""
    name = f"the {profile.name} profile" + (f" at {peak}" if peak else "")
    return Load(load.in_flight, None, f"{name}, {profile.duration_s} s")


def _settings(args: argparse.Namespace) -> Settings:
    config = (
        load_config_autoscaler(args.config_autoscaler)
        if args.config_autoscaler is not None
        else AutoscalerConfig()
    )
    overrides: dict[str, str] = {}
    for item in args.annotation:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise UsageError(f"--annotation {item!r}: expected KEY=VALUE")
        overrides[key if key.startswith(GROUP) else GROUP + key] = value
    return load_service(args.service, config, overrides)


def write_csv(prediction: Prediction, path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        for row in prediction.rows:
            writer.writerow(
                [
                    row.second,
                    f"{row.in_flight_mean:.6g}",
                    row.desired_pods,
                    row.ready_pods,
                    int(row.panic),
                    int(row.activator_in_path),
                ]
            )


def run(args: argparse.Namespace) -> str:
    if args.pod_start_seconds < 0:
        raise UsageError("--pod-start-seconds cannot be negative")
    if args.start_pods < 0:
        raise UsageError("--start-pods cannot be negative")
    if args.start_pods and args.new_revision:
        raise UsageError("--start-pods and --new-revision describe different starts: pick one")
    settings = _settings(args)
    load = _load(args)
    start = Start(pods=args.start_pods, new_revision=args.new_revision)
    prediction = predict(load.in_flight, settings, args.pod_start_seconds, start)
    text = report.summary(load, prediction, settings, args.pod_start_seconds)
    if load.recorded is not None:
        text += report.comparison(prediction, load.recorded)
    if args.latency_goal_ms is not None:
        if args.latency_goal_ms <= 0:
            raise UsageError("--latency-goal-ms must be positive")
        redis_us_per_request, redis_source = _redis_cost(args)
        try:
            advice = report.recommend(
                _capacity(args),
                args.latency_goal_ms / 1000,
                max(load.in_flight),
                settings.target_utilization,
                redis_us_per_request,
                redis_source,
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
        text += advice.text
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create {args.out}: {error.strerror}") from None
    write_csv(prediction, args.out / "prediction.csv")
    plot.draw(
        prediction,
        load.recorded,
        settings.target,
        f"{load.source}: {report.short_settings(settings, args.pod_start_seconds)}",
        args.out / "prediction.png",
    )
    (args.out / "summary.txt").write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        text = run(args)
    except (UsageError, LoadError, SettingsError) as error:
        print(f"predict: error: {error}", file=sys.stderr)
        return 2
    print(text, end="")
    print(f"Wrote {args.out / 'prediction.csv'}, prediction.png and summary.txt")
    return 0
