"""Pass/fail limits for CI: each one broken prints one line, and the run exits with 3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXIT_THRESHOLDS = 3


@dataclass(frozen=True)
class Thresholds:
    max_error_rate: float | None = None
    max_p95_ms: float | None = None
    max_p99_ms: float | None = None
    require_rate: bool = False


def violations(thresholds: Thresholds, summary: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    rate = summary["error_rate"]
    if thresholds.max_error_rate is not None and (rate or 0.0) > thresholds.max_error_rate:
        lines.append(
            f"threshold --max-error-rate {thresholds.max_error_rate:g} broken: error rate "
            f"{rate:.6g} ({summary['errors_total']} of {summary['requests_finished']} requests)"
        )
    latency = summary["latency_ms"]
    for name, limit in (("p95", thresholds.max_p95_ms), ("p99", thresholds.max_p99_ms)):
        value = latency[name]
        if limit is not None and value is not None and value > limit:
            lines.append(f"threshold --max-{name}-ms {limit:g} broken: {name} {value:g} ms")
    if thresholds.require_rate:
        short = [stage for stage in summary["stages"] if stage.get("reached") is False]
        if short:
            described = "; ".join(
                f"stage {s['index'] + 1} ({s['rate']:g} req/s): sent {s['sent']} of {s['asked']}, "
                f"{s['dropped']} dropped, {s['late']} late: {s['cause']}"
                for s in short
            )
            lines.append(f"threshold --require-rate broken: {described}")
    return lines
