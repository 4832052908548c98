"""Readings drawn from a finished timeline: scaling milestones and the generator's own health."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from loadtest.knative import KnativeState
from loadtest.profiles import REQUESTS_PER_USER_PER_SECOND
from loadtest.timeline import TimelineRow, percentile

# One process of gevent uses one core: near 100 % of it, the generator is the bottleneck.
GENERATOR_CPU_SATURATED_PERCENT = 90.0
HOST_CPU_BUSY_PERCENT = 95.0
# A rate stage counts as reached when at least this share of the asked requests went out.
RATE_REACHED_SHARE = 0.95


@dataclass(frozen=True)
class ScaleUp:
    load_started_s: int
    pods_ready_at_start: int
    desired_at_start: int | None
    desired_rose_after_s: int | None
    ready_rose_after_s: int | None


@dataclass(frozen=True)
class ScaleToZero:
    idle_from_s: int
    zero_at_s: int | None
    pods_at_end: int | None

    @property
    def after_s(self) -> int | None:
        return None if self.zero_at_s is None else self.zero_at_s - self.idle_from_s


@dataclass(frozen=True)
class ColdStart:
    second: int
    latency_ms: float
    status: int | None
    failure: str | None


@dataclass(frozen=True)
class GeneratorHealth:
    busy_seconds: int
    cpu_p50: float | None
    cpu_p95: float | None
    cpu_max: float | None
    cpu_saturated_seconds: int
    host_cpu_busy_seconds: int
    asked_requests: float | None
    sent_when_asked: int | None
    rate_shortfall_seconds: int
    notes: list[str] = field(default_factory=list)

    @property
    def saturated(self) -> bool:
        """CPU-bound for a tenth of the busy seconds (at least two): figures describe the tool."""
        threshold = max(2, math.ceil(0.1 * self.busy_seconds))
        return self.busy_seconds > 0 and self.cpu_saturated_seconds >= threshold

    @property
    def rate_reached(self) -> bool | None:
        if not self.asked_requests:
            return None
        return (self.sent_when_asked or 0) >= RATE_REACHED_SHARE * self.asked_requests


def _states(rows: Sequence[TimelineRow]) -> list[KnativeState | None]:
    return [row.knative for row in rows]


def has_knative(rows: Sequence[TimelineRow]) -> bool:
    return any(row.knative is not None for row in rows)


def peak(rows: Sequence[TimelineRow], field_name: str) -> int | None:
    values = [
        getattr(row.knative, field_name)
        for row in rows
        if row.knative is not None and getattr(row.knative, field_name) is not None
    ]
    return max(values) if values else None


def scale_up(rows: Sequence[TimelineRow], initial: KnativeState | None) -> ScaleUp | None:
    """Seconds from the first request until the wanted and the ready pods first rose.

    ``initial`` is the state read before the run started.
    """
    start = next((row.second for row in rows if row.sent > 0), None)
    if start is None:
        return None
    # What the first request met: the last sample before its second, else the one before the run.
    before = next((s for s in reversed(_states(rows[:start])) if s is not None), initial)
    if before is None:
        return None
    ready_at_start = before.pods_ready
    desired_at_start = before.desired_scale
    desired_rose = ready_rose = None
    for row in rows[start:]:
        state = row.knative
        if state is None:
            continue
        if (
            desired_rose is None
            and state.desired_scale is not None
            and state.desired_scale > (desired_at_start or 0)
        ):
            desired_rose = row.second - start
        if ready_rose is None and state.pods_ready > ready_at_start:
            ready_rose = row.second - start
    return ScaleUp(start, ready_at_start, desired_at_start, desired_rose, ready_rose)


def scale_to_zero(rows: Sequence[TimelineRow]) -> ScaleToZero | None:
    """From the second after the last request to the first sample with no ready or pending pod."""
    last_load = next((row.second for row in reversed(rows) if row.sent > 0), None)
    if last_load is None or last_load == rows[-1].second:
        return None
    idle_from = last_load + 1
    pods_at_end = None
    for row in rows[idle_from:]:
        if row.knative is None:
            continue
        pods_at_end = row.knative.pods_up
        if row.knative.pods_up == 0:
            return ScaleToZero(idle_from, row.second, 0)
    return ScaleToZero(idle_from, None, pods_at_end)


def cold_starts(rows: Sequence[TimelineRow], initial: KnativeState | None) -> list[ColdStart]:
    """The first request of each burst that began while no pod of the revision was ready."""
    found: list[ColdStart] = []
    latest = initial
    previous_sent = 0
    for row in rows:
        # ``latest`` is still the sample before this second: what the first request met.
        first = row.first_request
        burst_begins = row.sent > 0 and previous_sent == 0 and first is not None
        if burst_begins and first is not None and latest is not None and latest.pods_ready == 0:
            found.append(ColdStart(row.second, first.latency_ms, first.status, first.failure))
        if row.knative is not None:
            latest = row.knative
        previous_sent = row.sent
    return found


def activator_seconds(rows: Sequence[TimelineRow]) -> int:
    return sum(1 for row in rows if row.knative is not None and row.knative.activator_in_path)


def generator_health(rows: Sequence[TimelineRow], latency_p95_ms: float | None) -> GeneratorHealth:
    busy = [row for row in rows if row.sent > 0 or (row.users or 0) > 0]
    cpu = sorted(row.generator_cpu for row in busy if row.generator_cpu is not None)
    saturated_seconds = sum(1 for value in cpu if value >= GENERATOR_CPU_SATURATED_PERCENT)
    host_busy = sum(
        1 for row in busy if row.host_cpu is not None and row.host_cpu >= HOST_CPU_BUSY_PERCENT
    )
    # New users start at random points of their first interval, so a rate stage's first
    # second is already full: every second with an asked rate counts.
    asked_rows = [row for row in rows if row.asked_rate]
    asked = sum(row.asked_rate or 0.0 for row in asked_rows) if asked_rows else None
    sent_when_asked = sum(row.sent for row in asked_rows) if asked_rows else None
    shortfall = sum(1 for row in asked_rows if row.sent < 0.9 * (row.asked_rate or 0.0))
    health = GeneratorHealth(
        busy_seconds=len(busy),
        cpu_p50=percentile(cpu, 0.5),
        cpu_p95=percentile(cpu, 0.95),
        cpu_max=cpu[-1] if cpu else None,
        cpu_saturated_seconds=saturated_seconds,
        host_cpu_busy_seconds=host_busy,
        asked_requests=asked,
        sent_when_asked=sent_when_asked,
        rate_shortfall_seconds=shortfall,
    )
    if health.saturated:
        health.notes.append(
            f"the load generator was saturated: its CPU was at or above "
            f"{GENERATOR_CPU_SATURATED_PERCENT:g} % in {saturated_seconds} of {len(busy)} busy "
            "seconds, so the figures describe the generator, not the function; ask for less load"
        )
    if health.rate_reached is False:
        share = 100 * (sent_when_asked or 0) / (asked or 1)
        budget_ms = 1000 / REQUESTS_PER_USER_PER_SECOND
        if health.saturated:
            cause = "the generator ran out of CPU"
        elif latency_p95_ms is not None and latency_p95_ms > budget_ms:
            cause = (
                f"answers were slow (p95 {latency_p95_ms:.0f} ms, above each user's "
                f"{budget_ms:.0f} ms pacing), so users waited on them"
            )
        else:
            cause = "the generator could not keep the pace"
        health.notes.append(
            f"the asked rate was not reached: {sent_when_asked} of {asked:.0f} requests sent "
            f"({share:.0f} %, short in {shortfall} s): {cause}"
        )
    if busy and host_busy >= max(2, math.ceil(0.1 * len(busy))):
        health.notes.append(
            f"the machine's CPUs were busy (>= {HOST_CPU_BUSY_PERCENT:g} %) in {host_busy} "
            "seconds: generator and function compete for them, latency includes that wait"
        )
    return health
