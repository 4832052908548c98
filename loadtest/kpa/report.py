"""The prediction in words: the summary, the comparison with a recorded run, a recommendation."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from loadtest.kpa.load import Load, Recorded
from loadtest.kpa.settings import Settings
from loadtest.kpa.simulation import Prediction, Row

# At most this many periods are listed where prediction and record differ.
LISTED_PERIODS = 5


def periods(flags: Iterable[bool]) -> list[tuple[int, int]]:
    """(first, last) second of each run of True."""
    found: list[tuple[int, int]] = []
    start: int | None = None
    last = -1
    for second, flag in enumerate(flags):
        last = second
        if flag and start is None:
            start = second
        elif not flag and start is not None:
            found.append((start, second - 1))
            start = None
    if start is not None:
        found.append((start, last))
    return found


def _span(period: tuple[int, int]) -> str:
    first, last = period
    return f"{first}-{last} s" if last > first else f"{first} s"


def _spans(found: Sequence[tuple[int, int]]) -> str:
    shown = ", ".join(_span(p) for p in found[:LISTED_PERIODS])
    more = len(found) - LISTED_PERIODS
    return shown + (f" and {more} more" if more > 0 else "")


def describe_settings(settings: Settings, pod_start_s: float) -> str:
    s = settings
    max_scale = str(s.max_scale) if s.max_scale else "unlimited"
    tbc = {0.0: "0 (activator out of the path whenever pods exist)", -1.0: "-1 (always)"}.get(
        s.target_burst_capacity, f"{s.target_burst_capacity:g}"
    )
    return (
        f"target {s.target:g} in flight per pod ({s.total:g} x {s.target_utilization:.0%}), "
        f"containerConcurrency {s.container_concurrency}, scale {s.min_scale}..{max_scale}, "
        f"stable window {s.stable_window_s:g} s, panic window {s.panic_window_s:g} s at "
        f"{s.panic_threshold:.0%}, target burst capacity {tbc}, scale-down delay "
        f"{s.scale_down_delay_s:g} s, scale-to-zero grace {s.scale_to_zero_grace_period_s:g} s, "
        f"pod retention {s.scale_to_zero_pod_retention_period_s:g} s, pod start {pod_start_s:g} s"
    )


def short_settings(settings: Settings, pod_start_s: float) -> str:
    s = settings
    max_scale = str(s.max_scale) if s.max_scale else "unlimited"
    return (
        f"target {s.target:g}/pod, burst capacity {s.target_burst_capacity:g}, "
        f"scale {s.min_scale}..{max_scale}, pod start {pod_start_s:g} s"
    )


@dataclass(frozen=True)
class Facts:
    """The figures the summary states, for tests and for the comparison."""

    peak_desired: int
    peak_desired_second: int | None
    panic_periods: list[tuple[int, int]]
    last_request_second: int | None
    zero_pods_second: int | None
    cold_starts: int


def facts(prediction: Prediction) -> Facts:
    rows = prediction.rows
    peak = max((row.desired_pods for row in rows), default=0)
    peak_second = next((row.second for row in rows if row.desired_pods == peak), None)
    busy = [row.second for row in rows if row.in_flight_mean > 0]
    last_request = busy[-1] if busy else None
    zero = None
    if last_request is not None:
        zero = next(
            (
                row.second
                for row in rows
                if row.second > last_request and row.ready_pods == 0 and row.replicas == 0
            ),
            None,
        )
    return Facts(
        peak_desired=peak,
        peak_desired_second=peak_second if peak > 0 else None,
        panic_periods=periods(row.panic for row in rows),
        last_request_second=last_request,
        zero_pods_second=zero,
        cold_starts=len(prediction.cold_starts),
    )


def summary(load: Load, prediction: Prediction, settings: Settings, pod_start_s: float) -> str:
    f = facts(prediction)
    rows = prediction.rows
    tail = len(rows) - prediction.timeline_seconds
    lines = [
        f"Prediction for {load.source}: {prediction.timeline_seconds} s of load, then {tail} s "
        "without load",
        f"Settings: {describe_settings(settings, pod_start_s)}",
    ]
    if f.peak_desired_second is None:
        lines.append("Peak desired pods: 0")
    else:
        ready_peak = max(row.ready_pods for row in rows)
        lines.append(
            f"Peak desired pods: {f.peak_desired} at {f.peak_desired_second} s "
            f"(peak ready pods: {ready_peak})"
        )
    if f.panic_periods:
        total = sum(last - first + 1 for first, last in f.panic_periods)
        lines.append(f"Panic mode: {_spans(f.panic_periods)} ({total} s in all)")
    else:
        lines.append("Panic mode: never")
    loaded = [row for row in rows if row.in_flight_mean > 0]
    if loaded:
        proxied = sum(row.activator_in_path for row in loaded)
        lines.append(
            f"Activator in the request path: {proxied} of the {len(loaded)} s with requests"
        )
    if f.last_request_second is None:
        lines.append("No requests in the timeline")
    elif f.zero_pods_second is None:
        lines.append(
            f"Last request at {f.last_request_second} s; pods remain at the end, "
            f"{rows[-1].second} s (min-scale or scale to zero disabled)"
        )
    else:
        lines.append(
            f"Last request at {f.last_request_second} s; zero pods at {f.zero_pods_second} s: "
            f"{f.zero_pods_second - f.last_request_second} s later"
        )
    capped = [row for row in rows if settings.max_scale and row.decided > settings.max_scale]
    if capped:
        lines.append(
            f"max-scale {settings.max_scale} held the autoscaler back for {len(capped)} s "
            f"({_spans(periods(row.decided > settings.max_scale for row in rows))}); it wanted up "
            f"to {max(row.decided for row in capped)} pods"
        )
    if prediction.cold_starts:
        starts = ", ".join(
            f"{c.second} s (first pod ready at {c.first_ready} s)"
            if c.first_ready is not None
            else f"{c.second} s (no pod ready by the end)"
            for c in prediction.cold_starts
        )
        lines.append(f"Cold starts: {len(prediction.cold_starts)}: {starts}")
    else:
        lines.append("Cold starts: none")
    return "\n".join(lines) + "\n"


def _first(values: Iterable[tuple[int, bool]]) -> int | None:
    return next((second for second, flag in values if flag), None)


def comparison(prediction: Prediction, recorded: Recorded) -> str:
    """Where the prediction and the recorded Knative state differ, in a few lines."""
    rows: Sequence[Row] = prediction.rows[: len(recorded.ready)]
    lines = ["Against the recorded Knative state:"]
    pairs = [
        (row, seen) for row, seen in zip(rows, recorded.ready, strict=False) if seen is not None
    ]
    if pairs:
        differ = [row.ready_pods != seen for row, seen in zip(rows, recorded.ready, strict=False)]
        known = [seen is not None for seen in recorded.ready[: len(rows)]]
        differing = periods(d and k for d, k in zip(differ, known, strict=True))
        equal = sum(1 for row, seen in pairs if row.ready_pods == seen)
        worst_row, worst_seen = max(pairs, key=lambda pair: abs(pair[0].ready_pods - pair[1]))
        lines.append(
            f"  ready pods: equal in {equal} of {len(pairs)} recorded seconds"
            + (f"; they differ at {_spans(differing)}" if differing else "")
        )
        if worst_row.ready_pods != worst_seen:
            lines.append(
                f"  largest difference at {worst_row.second} s: predicted {worst_row.ready_pods}, "
                f"recorded {worst_seen}"
            )
        lines.append(
            f"  peak ready pods: predicted {max(r.ready_pods for r, _ in pairs)}, "
            f"recorded {max(seen for _, seen in pairs)}"
        )
        predicted_up = _first((r.second, r.ready_pods > 0) for r, _ in pairs)
        recorded_up = _first((r.second, seen > 0) for r, seen in pairs)
        lines.append(
            f"  first ready pod: predicted at {_at(predicted_up)}, recorded at {_at(recorded_up)}"
        )
        last_busy = max((r.second for r, _ in pairs if r.in_flight_mean > 0), default=None)
        if last_busy is not None:
            after = [(r, seen) for r, seen in pairs if r.second > last_busy]
            predicted_zero = _first((r.second, r.ready_pods == 0) for r, _ in after)
            recorded_zero = _first((r.second, seen == 0) for r, seen in after)
            lines.append(
                f"  zero pods after the last request: predicted at {_at(predicted_zero)}, "
                f"recorded at {_at(recorded_zero)}"
            )
    flags = [
        (row, seen)
        for row, seen in zip(rows, recorded.activator_in_path, strict=False)
        if seen is not None
    ]
    if flags:
        agree = sum(1 for row, seen in flags if row.activator_in_path == seen)
        lines.append(f"  activator in the path: agrees in {agree} of {len(flags)} recorded seconds")
    desired = [
        (row, seen) for row, seen in zip(rows, recorded.desired, strict=False) if seen is not None
    ]
    if desired:
        equal = sum(1 for row, seen in desired if row.desired_pods == seen)
        lines.append(f"  desired pods: equal in {equal} of {len(desired)} recorded seconds")
    return "\n".join(lines) + "\n"


def _at(second: int | None) -> str:
    return "never" if second is None else f"{second} s"


@dataclass(frozen=True)
class Capacity:
    """One pod's capacity and where the figures come from."""

    requests_per_second: float
    request_seconds: float  # time a request spends in the pod at that load
    source: str


@dataclass(frozen=True)
class Recommendation:
    target: int
    container_concurrency: int
    max_scale: int
    pods_one_redis_core_feeds: int
    text: str


def recommend(
    capacity: Capacity,
    latency_goal_s: float,
    peak_in_flight: float,
    target_utilization: float,
    redis_us_per_request: float,
    redis_source: str,
) -> Recommendation:
    """A target, containerConcurrency and max-scale for a latency goal, by Little's law.

    A pod is busy with capacity x request time requests in flight; more only wait. A request
    that finds n in flight waits for about n / capacity seconds, so the latency goal bounds the
    hard limit (containerConcurrency) at capacity x goal. The target is the busy point, not
    above that limit; max-scale holds the peak at the target utilization.
    """
    if min(capacity.requests_per_second, capacity.request_seconds, latency_goal_s) <= 0:
        raise ValueError("capacity, request time and latency goal must be positive")
    busy = capacity.requests_per_second * capacity.request_seconds
    limit = math.floor(capacity.requests_per_second * latency_goal_s)
    lines = [
        f"Recommendation for a latency goal of {latency_goal_s * 1000:g} ms, from "
        f"{capacity.requests_per_second:g} req/s per pod and "
        f"{capacity.request_seconds * 1000:g} ms per request ({capacity.source}):"
    ]
    if latency_goal_s < capacity.request_seconds:
        lines.append(
            "  the goal is below the time one request takes in the pod: no setting meets it"
        )
    target = max(1, min(math.floor(busy), limit))
    concurrency = max(target, limit)
    per_pod = target * target_utilization
    pods = max(1, math.ceil(peak_in_flight / per_pod)) if peak_in_flight > 0 else 1
    queue_ms = concurrency / capacity.requests_per_second * 1000
    redis_rps = 1e6 / redis_us_per_request
    redis_pods = max(1, math.floor(redis_rps / capacity.requests_per_second))
    lines += [
        f'  autoscaling.knative.dev/target: "{target}" (a pod is busy at {busy:.1f} in flight; '
        f"it aims for {per_pod:g} at {target_utilization:.0%} utilization)",
        f"  containerConcurrency: {concurrency} (beyond it requests queue in the queue-proxy; "
        f"{concurrency} in flight take about {queue_ms:.0f} ms)",
        f'  autoscaling.knative.dev/max-scale: "{pods}" (the peak of {peak_in_flight:g} in '
        f"flight at {per_pod:g} per pod)",
    ]
    verdict = (
        f"  one Redis core serves about {redis_rps:,.0f} req/s at "
        f"{redis_us_per_request:g} µs of Redis CPU per request ({redis_source}): "
        f"{redis_pods} busy pods"
    )
    if pods > redis_pods:
        verdict += (
            f"; max-scale {pods} is beyond that: pods past {redis_pods} add cost, not "
            "throughput, unless Redis gets more cores or shards"
        )
    else:
        verdict += f"; max-scale {pods} is within it"
    lines.append(verdict)
    return Recommendation(target, concurrency, pods, redis_pods, "\n".join(lines) + "\n")
