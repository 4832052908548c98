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
from loadtest.engine import LiveSecond
from loadtest.knative import KnativeState
from loadtest.mix import REQUEST_KINDS
from loadtest.record import RunRecord
from loadtest.timeline import FAILURE_KINDS, percentile


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


def requests_of(record: RunRecord) -> list[analysis.Request]:
    return [
        analysis.Request(REQUEST_KINDS[kind], due, sent, end, status)
        for result in record.results
        for kind, due, sent, end, status in zip(
            result.kind, result.due, result.sent, result.end, result.status, strict=True
        )
    ]


def build_summary(
    record: RunRecord, kube: KubeTarget | None, requests: list[analysis.Request]
) -> dict[str, Any]:
    rows = record.rows
    settings = record.settings
    statuses: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    sent = record.unfinished
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
    processes = settings.processes
    health = analysis.generator_health(rows, processes)
    stages = analysis.stage_reports(
        settings.profile, rows, requests, record.started_at, processes, settings.max_in_flight
    )
    dropped = sum(row.dropped for row in rows)
    summary: dict[str, Any] = {
        "url": settings.url,
        "host_header": settings.host_header,
        "profile": settings.profile.name,
        "mode": settings.profile.mode,
        "processes": processes,
        "max_in_flight": settings.max_in_flight,
        "mix": {kind: weight for kind, weight in settings.mix.weights.items()},
        "started_at": datetime.fromtimestamp(record.started_at, UTC).isoformat(),
        "duration_s": len(rows),
        "interrupted": record.interrupted,
        "run_prefix": f"/loadtest/{settings.run_prefix}/",
        "resources_created": record.resources_created,
        "requests_sent": sent,
        "requests_answered": answered,
        "requests_finished": finished,
        "requests_unfinished": sent - finished,
        "requests_dropped": dropped,
        "responses": {str(code): n for code, n in sorted(statuses.items())},
        "errors": errors,
        "errors_total": error_total,
        "error_rate": round(error_total / finished, 6) if finished else None,
        "latency_ms": _latency(record.latencies_ms),
        "service_time_ms": _latency(record.service_ms),
        "by_kind": by_kind,
        "stages": [
            {
                "index": stage.index,
                "start_s": stage.start_s,
                "duration_s": stage.duration_s,
                **({"rate": stage.rate} if stage.rate is not None else {"users": stage.users}),
                "asked": stage.asked,
                "sent": stage.sent,
                "dropped": stage.dropped,
                "late": stage.late,
                "errors": stage.errors,
                "reached": stage.reached,
                "cause": stage.cause,
            }
            for stage in stages
        ],
        "rate_reached": None
        if all(stage.reached is None for stage in stages)
        else all(stage.reached is not False for stage in stages),
        "generator": {
            "saturated": health.saturated,
            "cpu_seconds": round(record.cpu_seconds, 3),
            "cpu_ms_per_request": round(1000 * record.cpu_seconds / sent, 4) if sent else None,
            "cpu_percent_p50": _round(health.cpu_p50),
            "cpu_percent_p95": _round(health.cpu_p95),
            "cpu_percent_max": _round(health.cpu_max),
            "cpu_saturated_seconds": health.cpu_saturated_seconds,
            "loop_lag_max_ms": _round(health.lag_max_ms),
            "loop_lag_saturated_seconds": health.lag_saturated_seconds,
            "busy_seconds": health.busy_seconds,
            "host_cpu_busy_seconds": health.host_cpu_busy_seconds,
            "connections_opened": sum(r.connections_opened for r in record.results),
            "notes": health.notes,
        },
        "knative": None,
    }
    if kube is not None and record.knative is not None:
        summary["knative"] = _knative_summary(record, kube, requests)
    return summary


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _knative_summary(
    record: RunRecord, kube: KubeTarget, requests: list[analysis.Request]
) -> dict[str, Any]:
    rows = record.rows
    watch = record.knative
    assert watch is not None
    up = analysis.scale_up(rows, record.initial_state)
    zero = analysis.scale_to_zero(rows)
    colds = analysis.cold_starts(rows, requests, watch, record.started_at)
    return {
        "context": kube.context,
        "namespace": kube.namespace,
        "service": kube.service,
        "revisions": watch.revisions,
        "events": len(watch.events),
        "watch_failures": watch.failures,
        "last_watch_error": watch.last_error,
        "pod_stats_read": len(watch.pod_samples),
        "pod_stat_failures": watch.pod_stat_failures,
        "last_pod_stat_error": watch.last_pod_stat_error,
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
            {
                "first_request_at_s": _seconds(c.first_sent_s),
                "desired_above_zero_after_s": _seconds(c.desired_above_zero_s),
                "pod_scheduled_after_s": _seconds(c.pod_scheduled_s),
                "pod_ready_after_s": _seconds(c.pod_ready_s),
                "first_answer_after_s": _seconds(c.first_answer_s),
                "first_answer_status": c.first_status,
                "requests_before_ready": len(c.latencies_ms),
                "latencies_before_ready_ms": [round(v, 2) for v in c.latencies_ms],
            }
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
        self, second: int, parts: list[LiveSecond], duration: int, state: KnativeState | None
    ) -> None:
        last = second == duration - 1
        if not self.interactive and (second + 1) % self.every_s and not last:
            return
        latencies = sorted(v for part in parts for v in part.latencies_ms)
        cpu = sum(part.cpu_percent or 0.0 for part in parts)
        line = (
            f"[{second + 1:>4}/{duration} s] sent {sum(p.sent for p in parts):>5}/s  "
            f"answered {sum(p.answered for p in parts):>5}/s  "
            f"in flight {sum(p.in_flight_mean for p in parts):>6.1f}  "
            f"p50 {_ms(percentile(latencies, 0.5))} p95 {_ms(percentile(latencies, 0.95))} "
            f"p99 {_ms(percentile(latencies, 0.99))} ms  "
            f"errors {sum(p.errors for p in parts)}  dropped {sum(p.dropped for p in parts)}  "
            f"cpu {cpu:.0f}%{_pods(state)}"
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
        f"  latency (from when each request was due): p50 {_ms(latency['p50'])} ms, "
        f"p95 {_ms(latency['p95'])} ms, p99 {_ms(latency['p99'])} ms, max {_ms(latency['max'])} ms"
    )
    service = summary["service_time_ms"]
    lines.append(
        f"  service time (from the send): p50 {_ms(service['p50'])} ms, "
        f"p95 {_ms(service['p95'])} ms, p99 {_ms(service['p99'])} ms"
    )
    for stage in summary["stages"]:
        lines.append("  " + _stage_line(stage))
    knative = summary["knative"]
    if knative is not None:
        lines.extend(_knative_lines(knative))
    generator = summary["generator"]
    verdict = "SATURATED" if generator["saturated"] else "not saturated"
    lines.append(
        f"  generator ({summary['processes']} process(es)): CPU p95 "
        f"{_or_dash(generator['cpu_percent_p95'])} % of a core, max "
        f"{_or_dash(generator['cpu_percent_max'])} %, loop lag max "
        f"{_or_dash(generator['loop_lag_max_ms'])} ms, "
        f"{_or_dash(generator['cpu_ms_per_request'])} ms CPU per request: {verdict}"
    )
    lines.extend(f"  WARNING: {note}" for note in generator["notes"])
    outputs = ["timeline.csv", "timeline.png", "summary.json", "histograms.json"]
    if knative is not None:
        outputs.append("knative-events.csv")
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
    for cold in colds:
        waited = cold["latencies_before_ready_ms"]
        lines.append(
            f"  cold start at {cold['first_request_at_s']:.3f} s: desired above 0 after "
            f"{_or_dash(cold['desired_above_zero_after_s'])} s, pod scheduled after "
            f"{_or_dash(cold['pod_scheduled_after_s'])} s, ready after "
            f"{_or_dash(cold['pod_ready_after_s'])} s, first answer after "
            f"{_or_dash(cold['first_answer_after_s'])} s; {len(waited)} request(s) arrived "
            f"before a pod was ready"
            + (f", the longest waited {max(waited):.0f} ms" if waited else "")
        )
    if not colds:
        lines.append("  cold start: none (no burst began at zero ready pods)")
    if knative["watch_failures"]:
        lines.append(
            f"  WARNING: {knative['watch_failures']} Kubernetes watch failure(s); last: "
            f"{knative['last_watch_error']}"
        )
    return lines


def _stage_line(stage: dict[str, Any]) -> str:
    where = (
        f"stage {stage['index'] + 1} ({stage['start_s']}-{stage['start_s'] + stage['duration_s']} s"
    )
    if stage["asked"] is None and not stage.get("users"):
        return f"{where}, idle): sent {stage['sent']}"
    if stage["asked"] is not None:
        verdict = "rate reached" if stage["reached"] else f"rate NOT reached: {stage['cause']}"
        return (
            f"{where}, {stage['rate']:g} req/s): asked {stage['asked']}, sent {stage['sent']}, "
            f"dropped {stage['dropped']}, late {stage['late']}: {verdict}"
        )
    return f"{where}, {stage['users']} users): sent {stage['sent']}"


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)
