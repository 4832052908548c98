"""Readings drawn from a finished timeline: scaling milestones and the generator's own health."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loadtest.knative import KnativeState
from loadtest.profiles import Profile
from loadtest.timeline import TimelineRow, percentile
from loadtest.watcher import KnativeWatcher

# One generator process uses one core at most. Past three quarters of it the loop falls behind
# under bursts (a 64-user run at 82 % already added milliseconds to every answer).
GENERATOR_CPU_SATURATED_PERCENT = 75.0
# The loop's timer probe late by this much in a second: requests wait on the generator.
LOOP_LAG_SATURATED_MS = 25.0
HOST_CPU_BUSY_PERCENT = 95.0
# A rate-mode request sent this much after it was due counts as sent late; a stage keeps its
# rate when nothing was dropped and at most 1 % went out late.
LATE_SEND_S = 0.05
LATE_SHARE_ALLOWED = 0.01


@dataclass(frozen=True, slots=True)
class Request:
    """One finished request, on the generator's clock (Unix seconds)."""

    kind: str
    due: float
    sent: float
    end: float
    status: int

    @property
    def latency_ms(self) -> float:
        return (self.end - self.due) * 1000


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
    """A burst that began while no pod of the revision was ready, milestone by milestone.

    Times are seconds after the burst's first request was sent, read from the watch events'
    arrival times and the requests' own clock; None when the milestone did not come in the run.
    """

    first_sent_s: float  # seconds since the run started
    desired_above_zero_s: float | None
    pod_scheduled_s: float | None
    pod_ready_s: float | None
    first_answer_s: float | None
    first_status: int | None
    latencies_ms: list[float]  # every request due before a pod was ready, in order

    @property
    def latency_p50_ms(self) -> float | None:
        return percentile(sorted(self.latencies_ms), 0.5)

    @property
    def latency_max_ms(self) -> float | None:
        return max(self.latencies_ms) if self.latencies_ms else None


@dataclass(frozen=True)
class StageReport:
    """One stage: what was asked, what went out, and whether the rate was kept (and why not)."""

    index: int
    start_s: int
    duration_s: int
    rate: float | None
    users: int | None
    asked: int | None
    sent: int
    dropped: int
    late: int
    errors: int
    reached: bool | None
    cause: str | None


@dataclass(frozen=True)
class GeneratorHealth:
    busy_seconds: int
    cpu_p50: float | None
    cpu_p95: float | None
    cpu_max: float | None
    cpu_saturated_seconds: int
    lag_saturated_seconds: int
    lag_max_ms: float | None
    host_cpu_busy_seconds: int
    notes: list[str] = field(default_factory=list)

    @property
    def saturated(self) -> bool:
        """CPU- or loop-bound for a tenth of the busy seconds (at least two)."""
        threshold = max(2, math.ceil(0.1 * self.busy_seconds))
        seconds = max(self.cpu_saturated_seconds, self.lag_saturated_seconds)
        return self.busy_seconds > 0 and seconds >= threshold


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


def cold_starts(
    rows: Sequence[TimelineRow],
    requests: Sequence[Request],
    watcher: KnativeWatcher,
    started_at: float,
) -> list[ColdStart]:
    """Every burst whose first request met no ready pod: when the autoscaler wanted a pod, when
    one was scheduled and ready, when the first answer came, and what each request due before a
    pod was ready waited."""
    if not requests:
        return []
    found: list[ColdStart] = []
    ordered = sorted(requests, key=lambda request: request.sent)
    previous_sent = 0
    position = 0
    for row in rows:
        begins = row.sent > 0 and previous_sent == 0
        previous_sent = row.sent
        if not begins:
            continue
        window_start = started_at + row.second
        while position < len(ordered) and ordered[position].sent < window_start:
            position += 1
        if position == len(ordered):
            break
        first = ordered[position]
        met = watcher.state_at(first.sent)
        if met is None or met.pods_ready > 0:
            continue

        def after(test: Callable[[KnativeState], bool], since: float) -> float | None:
            now = watcher.state_at(since)
            if now is not None and test(now):
                return 0.0
            for at, state in watcher.states:
                if at > since and test(state):
                    return at - since
            return None

        ready = after(lambda state: state.pods_ready > 0, first.sent)
        ready_at = first.sent + ready if ready is not None else math.inf
        answered = [r for r in ordered[position:] if r.status]
        first_answer = min(answered, key=lambda r: r.end) if answered else None
        burst_end = _burst_end(rows, row.second, started_at)
        waiting = [
            r.latency_ms
            for r in sorted(ordered[position:], key=lambda r: r.due)
            if r.due < min(ready_at, burst_end)
        ]
        found.append(
            ColdStart(
                first_sent_s=first.sent - started_at,
                desired_above_zero_s=after(lambda s: (s.desired_scale or 0) > 0, first.sent),
                pod_scheduled_s=after(lambda s: s.pods_scheduled > 0, first.sent),
                pod_ready_s=ready,
                first_answer_s=None if first_answer is None else first_answer.end - first.sent,
                first_status=None if first_answer is None else first_answer.status,
                latencies_ms=waiting,
            )
        )
    return found


def _burst_end(rows: Sequence[TimelineRow], start: int, started_at: float) -> float:
    for row in rows[start:]:
        if row.sent == 0:
            return started_at + row.second
    return math.inf


def activator_seconds(rows: Sequence[TimelineRow]) -> int:
    return sum(1 for row in rows if row.knative is not None and row.knative.activator_in_path)


def generator_health(rows: Sequence[TimelineRow], processes: int = 1) -> GeneratorHealth:
    busy = [row for row in rows if row.sent > 0 or (row.users or 0) > 0 or row.asked_rate]
    # The timeline's CPU is all processes together; each process is one core at most.
    cpu = sorted(row.generator_cpu / processes for row in busy if row.generator_cpu is not None)
    cpu_saturated = sum(1 for value in cpu if value >= GENERATOR_CPU_SATURATED_PERCENT)
    lags = [row.loop_lag_max_ms for row in busy if row.loop_lag_max_ms is not None]
    lag_saturated = sum(1 for value in lags if value >= LOOP_LAG_SATURATED_MS)
    host_busy = sum(
        1 for row in busy if row.host_cpu is not None and row.host_cpu >= HOST_CPU_BUSY_PERCENT
    )
    health = GeneratorHealth(
        busy_seconds=len(busy),
        cpu_p50=percentile(cpu, 0.5),
        cpu_p95=percentile(cpu, 0.95),
        cpu_max=cpu[-1] if cpu else None,
        cpu_saturated_seconds=cpu_saturated,
        lag_saturated_seconds=lag_saturated,
        lag_max_ms=max(lags) if lags else None,
        host_cpu_busy_seconds=host_busy,
    )
    if health.saturated:
        machine_busy = host_busy >= max(2, math.ceil(0.1 * len(busy)))
        why = (
            "the machine's CPUs were busy, so it waited for a core"
            if machine_busy and not cpu_saturated
            else "ask for less load or more --processes"
        )
        health.notes.append(
            f"the load generator was saturated: CPU at or above "
            f"{GENERATOR_CPU_SATURATED_PERCENT:g} % of a core per process in {cpu_saturated} and "
            f"its event loop {LOOP_LAG_SATURATED_MS:g} ms or more late in {lag_saturated} of "
            f"{len(busy)} busy seconds, so the figures describe the generator as much as the "
            f"function: {why}"
        )
    if busy and host_busy >= max(2, math.ceil(0.1 * len(busy))):
        health.notes.append(
            f"the machine's CPUs were busy (>= {HOST_CPU_BUSY_PERCENT:g} %) in {host_busy} "
            "seconds: generator and function compete for them, latency includes that wait"
        )
    return health


def stage_reports(
    profile: Profile, rows: Sequence[TimelineRow], requests: Sequence[Request],
    started_at: float, processes: int, max_in_flight: int,
) -> list[StageReport]:  # fmt: skip
    """Per stage, judged by the requests due in it: asked, sent, dropped, late and why."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for stage in profile.stages:
        bounds.append((start, start + stage.duration_s))
        start += stage.duration_s
    sent = [0] * len(bounds)
    late = [0] * len(bounds)
    errors = [0] * len(bounds)
    for request in requests:
        offset = request.due - started_at
        index = _stage_index(bounds, offset)
        sent[index] += 1
        if request.sent - request.due > LATE_SEND_S:
            late[index] += 1
        if not request.status or request.status >= 400:
            errors[index] += 1
    reports: list[StageReport] = []
    for index, (stage, (first, last)) in enumerate(zip(profile.stages, bounds, strict=True)):
        stage_rows = rows[first:last]
        dropped = sum(row.dropped for row in stage_rows)
        asked = math.ceil((stage.rate or 0) * stage.duration_s - 1e-9) if stage.rate else None
        reached: bool | None = None
        cause = None
        if asked:
            reached = dropped == 0 and late[index] <= LATE_SHARE_ALLOWED * asked
            if not reached:
                cause = _cause(stage_rows, dropped, late[index], errors[index], sent[index],
                               processes, max_in_flight)  # fmt: skip
        reports.append(
            StageReport(
                index=index,
                start_s=first,
                duration_s=stage.duration_s,
                rate=stage.rate if stage.is_rate else None,
                users=None if stage.is_rate else stage.users,
                asked=asked,
                sent=sent[index],
                dropped=dropped,
                late=late[index],
                errors=errors[index],
                reached=reached,
                cause=cause,
            )
        )
    return reports


def _stage_index(bounds: Sequence[tuple[int, int]], offset: float) -> int:
    for index, (_, last) in enumerate(bounds):
        if offset < last:
            return index
    return len(bounds) - 1


def _cause(
    rows: Sequence[TimelineRow], dropped: int, late: int, errors: int, sent: int,
    processes: int, max_in_flight: int,
) -> str:  # fmt: skip
    parts: list[str] = []
    cpu = [row.generator_cpu / processes for row in rows if row.generator_cpu is not None]
    lags = [row.loop_lag_max_ms for row in rows if row.loop_lag_max_ms is not None]
    if dropped:
        parts.append(
            f"slow answers: {dropped} requests dropped at the cap of {max_in_flight} in flight"
        )
        if sent and errors >= 0.5 * sent:
            parts.append(f"errors: {errors} of {sent} requests failed")
    if late:
        if cpu and max(cpu) >= GENERATOR_CPU_SATURATED_PERCENT:
            parts.append(f"generator CPU: {late} requests sent late, CPU up to {max(cpu):.0f} %")
        else:
            worst = f" (up to {max(lags):.0f} ms)" if lags else ""
            parts.append(f"event-loop lag: {late} requests sent late{worst}")
    return "; ".join(parts) or "unknown"
