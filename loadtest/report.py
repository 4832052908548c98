"""What a run leaves behind: summary.json, the progress line and the closing summary."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from loadtest import analysis
from loadtest.knative import KnativeState
from loadtest.record import RunRecord
from loadtest.timeline import FAILURE_KINDS, TimelineRow, percentile


@dataclass(frozen=True)
class KubeTarget:
    context: str | None
    namespace: str
    service: str


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _latency(values: list[float]) -> dict[str, float | None]:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "p50": rounded(percentile(values, 0.50)),
        "p95": rounded(percentile(values, 0.95)),
        "p99": rounded(percentile(values, 0.99)),
        "max": rounded(values[-1] if values else None),
        "mean": rounded(sum(values) / len(values) if values else None),
    }


def _errors(statuses: Counter[int], failures: Counter[str]) -> dict[str, int]:
    errors = {f"http_{code}": count for code, count in sorted(statuses.items()) if code >= 400}
    errors.update({kind: failures.get(kind, 0) for kind in FAILURE_KINDS})
    return errors


def build_summary(record: RunRecord, kube: KubeTarget | None) -> dict[str, Any]:
    rows = record.rows
    settings = record.settings
    statuses: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    sent = 0
    by_kind: dict[str, Any] = {}
    for kind, totals in sorted(record.by_kind.items()):
        statuses.update(totals.statuses)
        failures.update(totals.failures)
        sent += totals.sent
        by_kind[kind] = {
            "sent": totals.sent,
            "answered": totals.answered,
            "responses": {str(code): n for code, n in sorted(totals.statuses.items())},
            "errors": _errors(totals.statuses, totals.failures),
        }
    answered = sum(statuses.values())
    errors = _errors(statuses, failures)
    error_total = sum(errors.values())
    finished = answered + sum(failures.values())
    latency = _latency(record.latencies_ms)
    health = analysis.generator_health(rows, latency["p95"])
    summary: dict[str, Any] = {
        "url": settings.url,
        "host_header": settings.host_header,
        "profile": settings.profile.name,
        "mode": settings.profile.mode,
        "stages": [
            {"duration_s": s.duration_s, **({"rate": s.rate} if s.is_rate else {"users": s.users})}
            for s in settings.profile.stages
        ],
        "mix": {kind: weight for kind, weight in settings.mix.weights.items()},
        "started_at": datetime.fromtimestamp(record.started_at, UTC).isoformat(),
        "duration_s": len(rows),
        "interrupted": record.interrupted,
        "run_prefix": f"/loadtest/{settings.run_prefix}/",
        "resources_created": record.resources_created,
        "requests_sent": sent,
        "requests_answered": answered,
        "requests_unfinished": sent - finished,
        "responses": {str(code): n for code, n in sorted(statuses.items())},
        "errors": errors,
        "errors_total": error_total,
        "error_rate": round(error_total / finished, 6) if finished else None,
        "latency_ms": latency,
        "by_kind": by_kind,
        "rate": {
            "asked_requests": health.asked_requests,
            "sent_when_asked": health.sent_when_asked,
            "reached": health.rate_reached,
            "shortfall_seconds": health.rate_shortfall_seconds,
        },
        "generator": {
            "saturated": health.saturated,
            "cpu_percent_p50": health.cpu_p50,
            "cpu_percent_p95": health.cpu_p95,
            "cpu_percent_max": health.cpu_max,
            "cpu_saturated_seconds": health.cpu_saturated_seconds,
            "busy_seconds": health.busy_seconds,
            "host_cpu_busy_seconds": health.host_cpu_busy_seconds,
            "notes": health.notes,
        },
        "internal_errors": dict(record.internal_errors),
        "knative": None,
    }
    if kube is not None and record.knative is not None:
        summary["knative"] = _knative_summary(record, kube)
    return summary


def _knative_summary(record: RunRecord, kube: KubeTarget) -> dict[str, Any]:
    rows = record.rows
    watch = record.knative
    assert watch is not None
    up = analysis.scale_up(rows, record.initial_state)
    zero = analysis.scale_to_zero(rows)
    colds = analysis.cold_starts(rows, record.initial_state)
    return {
        "context": kube.context,
        "namespace": kube.namespace,
        "service": kube.service,
        "revisions": watch.revisions,
        "polls": watch.polls,
        "poll_failures": watch.failures,
        "last_poll_error": watch.last_error,
        "peak_pods_ready": analysis.peak(rows, "pods_ready"),
        "peak_desired_scale": analysis.peak(rows, "desired_scale"),
        "activator_in_path_seconds": analysis.activator_seconds(rows),
        "first_scale_up": None
        if up is None
        else {
            "load_started_at_s": up.load_started_s,
            "pods_ready_at_start": up.pods_ready_at_start,
            "desired_at_start": up.desired_at_start,
            "desired_rose_after_s": up.desired_rose_after_s,
            "ready_rose_after_s": up.ready_rose_after_s,
        },
        "idle_to_zero": None
        if zero is None
        else {
            "idle_from_s": zero.idle_from_s,
            "zero_pods_at_s": zero.zero_at_s,
            "after_s": zero.after_s,
            "pods_at_end": zero.pods_at_end,
        },
        "cold_starts": [
            {"at_s": c.second, "latency_ms": round(c.latency_ms, 2), "status": c.status}
            | ({"failure": c.failure} if c.failure else {})
            for c in colds
        ],
    }


def write_summary(summary: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n")


def _pods(state: KnativeState | None) -> str:
    if state is None:
        return ""
    path = {True: "activator", False: "direct", None: "?"}[state.activator_in_path]
    desired = "?" if state.desired_scale is None else str(state.desired_scale)
    return (
        f" | pods ready {state.pods_ready} pending {state.pods_pending} desired {desired} [{path}]"
    )


class Progress:
    """The live line: rewritten in place on a terminal, one line every few seconds otherwise."""

    def __init__(self, stream: TextIO = sys.stdout, every_s: int = 5) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self.every_s = every_s

    def __call__(
        self, second: int, row: TimelineRow, duration: int, state: KnativeState | None
    ) -> None:
        last = second == duration - 1
        if not self.interactive and (second + 1) % self.every_s and not last:
            return
        line = (
            f"[{second + 1:>4}/{duration} s] users {row.users or 0:>4}  "
            f"sent {row.sent:>5}/s  answered {row.answered:>5}/s  "
            f"p50 {_ms(row.p50_ms)} p95 {_ms(row.p95_ms)} p99 {_ms(row.p99_ms)} ms  "
            f"errors {row.errors}  cpu {row.generator_cpu or 0:.0f}%{_pods(state)}"
        )
        if self.interactive:
            self.stream.write("\r\033[K" + line + ("\n" if last else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def summary_text(summary: dict[str, Any], out_dir: Path, drew_pods: bool) -> str:
    lines = [
        f"{summary['profile']} profile, {summary['duration_s']} s, {summary['mode']} mode, "
        f"against {summary['url']}" + ("  (interrupted)" if summary["interrupted"] else ""),
    ]
    responses = ", ".join(f"{code}: {n}" for code, n in summary["responses"].items()) or "none"
    lines.append(
        f"  requests: sent {summary['requests_sent']}, answered {summary['requests_answered']}"
        f" ({responses})"
        + (
            f", unfinished {summary['requests_unfinished']}"
            if summary["requests_unfinished"]
            else ""
        )
    )
    rate = summary["error_rate"]
    kinds = ", ".join(f"{kind} {n}" for kind, n in summary["errors"].items() if n) or "none"
    lines.append(
        f"  errors: {summary['errors_total']}"
        + (f" ({100 * rate:.2f} %)" if rate is not None else "")
        + f": {kinds}"
    )
    latency = summary["latency_ms"]
    lines.append(
        f"  latency: p50 {_ms(latency['p50'])} ms, p95 {_ms(latency['p95'])} ms, "
        f"p99 {_ms(latency['p99'])} ms, max {_ms(latency['max'])} ms"
    )
    knative = summary["knative"]
    if knative is not None:
        lines.extend(_knative_lines(knative))
    generator = summary["generator"]
    cpu = generator["cpu_percent_p95"]
    verdict = "SATURATED" if generator["saturated"] else "not saturated"
    lines.append(
        f"  generator: CPU p95 {cpu if cpu is not None else '-'} %, "
        f"max {generator['cpu_percent_max'] if generator['cpu_percent_max'] is not None else '-'}"
        f" %: {verdict}"
    )
    if summary["rate"]["asked_requests"]:
        reached = "reached" if summary["rate"]["reached"] else "NOT reached"
        lines.append(
            f"  rate: asked {summary['rate']['asked_requests']:.0f} requests, sent "
            f"{summary['rate']['sent_when_asked']}: {reached}"
        )
    lines.extend(f"  WARNING: {note}" for note in generator["notes"])
    if summary["internal_errors"]:
        first = next(iter(summary["internal_errors"]))
        total = sum(summary["internal_errors"].values())
        lines.append(f"  WARNING: {total} request(s) failed inside the tool: {first}")
    outputs = ["timeline.csv", "timeline.png", "summary.json"]
    lines.append("  outputs: " + ", ".join(str(out_dir / name) for name in outputs))
    if knative is None and not drew_pods:
        lines.append("  (no Kubernetes state read: the picture has no pod panel)")
    return "\n".join(lines)


def _knative_lines(knative: dict[str, Any]) -> list[str]:
    lines = [
        f"  knative: {knative['namespace']}/{knative['service']}, revision(s) "
        f"{', '.join(knative['revisions']) or 'none yet'}; peak pods ready "
        f"{_or_dash(knative['peak_pods_ready'])}, peak desired "
        f"{_or_dash(knative['peak_desired_scale'])}; activator in path "
        f"{knative['activator_in_path_seconds']} s"
    ]
    up = knative["first_scale_up"]
    if up is None:
        lines.append("  first scale-up: no load was sent")
    elif up["desired_rose_after_s"] is None and up["ready_rose_after_s"] is None:
        lines.append(f"  first scale-up: none (stayed at {up['pods_ready_at_start']} ready pod(s))")
    else:
        lines.append(
            f"  first scale-up from {up['pods_ready_at_start']} ready pod(s): desired rose after "
            f"{_or_dash(up['desired_rose_after_s'])} s, ready pods after "
            f"{_or_dash(up['ready_rose_after_s'])} s"
        )
    zero = knative["idle_to_zero"]
    if zero is None:
        lines.append("  idle to zero pods: the run did not end idle")
    elif zero["after_s"] is None:
        lines.append(
            f"  idle to zero pods: not within the run ({_or_dash(zero['pods_at_end'])} pod(s) "
            f"at the end, idle from second {zero['idle_from_s']}); a longer idle tail shows it"
        )
    else:
        lines.append(
            f"  idle to zero pods: {zero['after_s']} s (idle from second {zero['idle_from_s']}, "
            f"no pods at second {zero['zero_pods_at_s']})"
        )
    colds = knative["cold_starts"]
    if colds:
        first = colds[0]
        lines.append(
            f"  cold start: the first request after zero pods took {_ms(first['latency_ms'])} ms"
            f" (second {first['at_s']}, {first.get('status') or first.get('failure')})"
            + (f"; {len(colds)} cold starts in all" if len(colds) > 1 else "")
        )
    else:
        lines.append("  cold start: none (no burst began at zero ready pods)")
    if knative["poll_failures"]:
        lines.append(
            f"  WARNING: {knative['poll_failures']} of "
            f"{knative['polls'] + knative['poll_failures']} Kubernetes polls failed; last: "
            f"{knative['last_poll_error']}"
        )
    return lines


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)
