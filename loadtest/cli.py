"""The command line: check everything that can be checked, run, write the outputs, summarise."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from loadtest.errors import EXIT_INTERRUPTED, LoadTestError, TargetUnreachable, UsageError
from loadtest.knative import KnativeState
from loadtest.mix import DEFAULT_MIX, RequestMix
from loadtest.profiles import (
    BUILT_IN_PROFILES,
    DEFAULT_DURATION_S,
    DEFAULT_USERS,
    Level,
    Profile,
    resolve,
)
from loadtest.record import RunSettings
from loadtest.report import KubeTarget
from loadtest.thresholds import EXIT_THRESHOLDS, Thresholds, violations
from loadtest.watcher import KnativeWatcher

CONNECT_CHECK_TIMEOUT_S = 5.0

EPILOG = """\
profiles:
  steady   the level (--users or --rate) for the whole --duration
  step     five equal steps rising to the level
  spike    idle 10 %, the level at once for 20 %, idle 70 % (long enough to watch
           scale-to-zero when --duration is 240 or more)
  FILE     a JSON/YAML list of stages: [{duration: 30, users: 10}, {duration: 60, rate: 50}, ...]

outputs in --out: timeline.csv (one row per second), timeline.png, summary.json,
  histograms.json (HDR histograms), knative-events.csv (with --service)

exit codes: 0 done, 1 failure, 2 usage, 3 a threshold broken, 130 interrupted

environment: LOADTEST_TOKEN, when set, is sent as `Authorization: Bearer <token>` on every
  request (a function with WRITE_TOKEN or READ_TOKEN); it never reaches the outputs

examples:
  python -m loadtest --url http://127.0.0.1:8080 --profile step --duration 40 --users 20
  python -m loadtest --url http://EXTERNAL-IP --host-header kv-store.kv-store.example.com \\
      --profile spike --duration 240 --users 40 \\
      --kube-context kv-store --namespace kv-store --service kv-store
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1")
    return value


def default_processes() -> int:
    return max(1, (os.cpu_count() or 1) - 1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="Drive the function with a load profile and record a per-second timeline\n"
        "of requests, latency, errors and (with --service) the Knative scaling state.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", required=True, help="base URL of the function")
    parser.add_argument(
        "--profile",
        default="steady",
        metavar="NAME",
        help=f"{', '.join(BUILT_IN_PROFILES)} or a stage file (default: steady)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_int,
        metavar="SECONDS",
        help=f"run length (default {DEFAULT_DURATION_S}; with a file: the file's total)",
    )
    parser.add_argument(
        "--mix",
        default=DEFAULT_MIX,
        help=f"request weights: count = GET /, get = GET of a resource, put = PUT of one "
        f"(default {DEFAULT_MIX})",
    )
    parser.add_argument(
        "--out",
        default="loadtest-out",
        metavar="DIR",
        help="output directory (default loadtest-out)",
    )
    level = parser.add_mutually_exclusive_group()
    level.add_argument(
        "--users",
        type=_positive_int,
        metavar="N",
        help=f"peak concurrent users, each sending its next request when the last one is "
        f"answered (default {DEFAULT_USERS})",
    )
    level.add_argument(
        "--rate",
        type=_positive_float,
        metavar="R",
        help="peak requests per second in total, whatever the answer time",
    )
    parser.add_argument(
        "--max-in-flight",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="rate mode: at most N requests out at once; requests due beyond it are dropped "
        "and counted (default 1000)",
    )
    parser.add_argument(
        "--processes",
        type=_positive_int,
        default=default_processes(),
        metavar="N",
        help=f"generator processes, one core each (default {default_processes()}: "
        "the cores this machine has, less one for the rest)",
    )
    limits = parser.add_argument_group("thresholds (each one broken prints a line; exit code 3)")
    limits.add_argument(
        "--max-error-rate",
        type=_fraction,
        metavar="F",
        help="largest share of failed requests, 0-1 (e.g. 0.01)",
    )
    limits.add_argument("--max-p95-ms", type=_positive_float, metavar="MS")
    limits.add_argument("--max-p99-ms", type=_positive_float, metavar="MS")
    limits.add_argument(
        "--require-rate",
        action="store_true",
        help="every rate stage must keep its rate (nothing dropped or late)",
    )
    kube = parser.add_argument_group("Knative state (watched in Kubernetes)")
    kube.add_argument("--kube-context", metavar="CTX", help="kubeconfig context (default: current)")
    kube.add_argument("--namespace", metavar="NS", help="namespace (default: the context's)")
    kube.add_argument("--service", metavar="NAME", help="the Knative service behind --url")
    parser.add_argument(
        "--host-header",
        metavar="HOST",
        help="send this Host header, e.g. kv-store.kv-store.example.com through an ingress IP",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="per request (default 30; a cold start may take seconds)",
    )
    parser.add_argument(
        "--resources",
        type=_positive_int,
        default=100,
        metavar="N",
        help="how many distinct resource paths PUT and GET use (default 100)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


def check_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url!r} is not an http(s) URL like http://127.0.0.1:8080")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UsageError(f"--url {url!r} has a bad port") from None
    return parts.hostname, port


def check_reachable(url: str) -> None:
    """A TCP connect only: an HTTP request here would wake a scaled-to-zero service too early."""
    host, port = check_url(url)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_CHECK_TIMEOUT_S):
            return
    except socket.gaierror:
        reason = f"cannot resolve host {host!r}"
    except TimeoutError:
        reason = f"no answer from {host}:{port} within {CONNECT_CHECK_TIMEOUT_S:g} s"
    except ConnectionRefusedError:
        reason = f"connection refused by {host}:{port}"
    except OSError as error:
        reason = f"cannot connect to {host}:{port} ({error.strerror or error})"
    raise TargetUnreachable(
        f"{url} is unreachable: {reason}; is the function running (`make run`, or "
        "`minikube tunnel` for the cluster)? check --url"
    )


def _level(args: argparse.Namespace) -> Level | None:
    if args.users is not None:
        return Level(users=args.users)
    if args.rate is not None:
        return Level(rate=args.rate)
    return None


def _connect_knative(
    args: argparse.Namespace,
) -> tuple[KubeTarget, KnativeWatcher, KnativeState] | None:
    if not (args.kube_context or args.namespace or args.service):
        return None
    if not args.service:
        raise UsageError("reading Knative state needs --service NAME (the Knative service)")
    from loadtest.kube_source import connect

    source, context_namespace = connect(args.kube_context)
    target = KubeTarget(args.kube_context, args.namespace or context_namespace, args.service)
    watcher = KnativeWatcher(source, target.namespace, target.service)
    initial = watcher.check()
    return target, watcher, initial


def _run_prefix() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def _describe(profile: Profile) -> str:
    stages = "; ".join(stage.describe() for stage in profile.stages)
    return f"{profile.name} profile, {profile.duration_s} s ({stages})"


def execute(args: argparse.Namespace) -> int:
    check_url(args.url)
    profile = resolve(args.profile, args.duration, _level(args))
    mix = RequestMix.parse(args.mix)
    knative = _connect_knative(args)
    check_reachable(args.url)
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create --out {out_dir}: {error.strerror}") from None

    # Imported only now: matplotlib and the HDR histograms are slow to import.
    from loadtest import histograms, plot, report, runner
    from loadtest.timeline import write_csv
    from loadtest.watcher import write_events

    settings = RunSettings(
        url=args.url,
        profile=profile,
        mix=mix,
        run_prefix=_run_prefix(),
        timeout_s=args.timeout,
        resource_count=args.resources,
        host_header=args.host_header,
        token=os.environ.get("LOADTEST_TOKEN") or None,
        max_in_flight=args.max_in_flight,
        processes=args.processes,
    )
    print(
        f"loadtest: {_describe(profile)}; mix {mix}; {args.url}; {args.processes} process(es)",
        flush=True,
    )
    if knative is not None:
        target, _, initial = knative
        print(
            f"loadtest: watching Knative service {target.namespace}/{target.service} "
            f"(revision {initial.revision or 'none yet'}, {initial.pods_ready} ready pod(s))",
            flush=True,
        )
    record = runner.run(settings, knative[1] if knative else None, report.Progress())
    requests = report.requests_of(record)
    summary = report.build_summary(record, knative[0] if knative else None, requests)
    write_csv(record.rows, out_dir / "timeline.csv")
    report.write_summary(summary, out_dir / "summary.json")
    histograms.write(histograms.build(requests), out_dir / "histograms.json")
    if knative is not None:
        write_events(knative[1].events, record.started_at, out_dir / "knative-events.csv")
    title = f"{profile.name} profile against {args.url}, {summary['started_at'][:19]}Z"
    changes = (
        [(at - record.started_at, state) for at, state in knative[1].states] if knative else None
    )
    drew_pods = plot.draw(record.rows, out_dir / "timeline.png", title, profile, changes)
    print(report.summary_text(summary, out_dir, drew_pods), flush=True)
    if record.interrupted:
        return EXIT_INTERRUPTED
    broken = violations(
        Thresholds(args.max_error_rate, args.max_p95_ms, args.max_p99_ms, args.require_rate),
        summary,
    )
    for line in broken:
        print(f"loadtest: {line}", file=sys.stderr, flush=True)
    return EXIT_THRESHOLDS if broken else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return execute(args)
    except LoadTestError as error:
        print(f"loadtest: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("loadtest: interrupted before the run started", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if args.debug:
            traceback.print_exc()
        print(
            f"loadtest: internal error ({type(error).__name__}: {error}); "
            "rerun with --debug for the traceback",
            file=sys.stderr,
        )
        return 1
