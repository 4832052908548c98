"""The per-second timeline: what was sent, what came back, how fast, and what Knative did.

Requests count as sent in the second they start and as answered (with their latency) in the
second they finish; answers that arrive while the run stops count in its last second. A request
is answered when an HTTP status came back, whatever it was; it is an error when that status is
400 or above, or when no status came back at all (timeout, connection error, other).

Latency is measured from the moment a request was due (in users mode: when it was sent), service
time from when it was sent. ``dropped`` counts rate-mode requests due in that second that were
not sent because the cap on requests in flight was reached. ``in_flight_mean``/``in_flight_max``
are the requests started and not yet answered, time-weighted over the second (exact, from every
start and finish), and ``target_in_flight`` is the autoscaler's line: the per-pod target times
its utilization times the ready pods. ``in_pods_mean`` is what the autoscaler counts instead: the
requests inside the pods, as their queue-proxies report them (empty when no pod reported).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from loadtest.knative import KnativeState

FAILURE_KINDS = ("timeout", "connection", "other")

BASE_COLUMNS = (
    "second",
    "time_utc",
    "users",
    "asked_rate",
    "sent",
    "answered",
    "ok",
    "errors",
    "errors_http",
    "errors_timeout",
    "errors_connection",
    "errors_other",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "generator_cpu_percent",
    "host_cpu_percent",
    "loop_lag_max_ms",
    "revision",
    "pa_desired",
    "pa_actual",
    "pods_ready",
    "pods_pending",
    "pods_terminating",
    "sks_mode",
    "activator_in_path",
    "dropped",
    "in_flight_mean",
    "in_flight_max",
    "target_in_flight",
    "in_pods_mean",
    "service_p50_ms",
    "service_p95_ms",
)


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when there are none."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class KindTotals:
    sent: int = 0
    answered: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)


@dataclass
class _Second:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    service_ms: list[float] = field(default_factory=list)
    users: int | None = None
    asked_rate: float | None = None
    generator_cpu: float | None = None
    host_cpu: float | None = None
    loop_lag_max_ms: float | None = None
    dropped: int = 0
    in_flight_mean: float = 0.0
    in_flight_max: int = 0
    in_pods_mean: float | None = None
    knative: KnativeState | None = None


@dataclass(frozen=True)
class TimelineRow:
    second: int
    time_utc: str
    users: int | None
    asked_rate: float | None
    sent: int
    statuses: dict[int, int]
    failures: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    generator_cpu: float | None
    host_cpu: float | None
    knative: KnativeState | None
    loop_lag_max_ms: float | None = None
    dropped: int = 0
    in_flight_mean: float = 0.0
    in_flight_max: int = 0
    in_pods_mean: float | None = None
    service_p50_ms: float | None = None
    service_p95_ms: float | None = None

    @property
    def target_in_flight(self) -> float | None:
        """The autoscaler's line: requests in flight the ready pods are meant to carry."""
        k = self.knative
        if k is None or k.target_per_pod is None:
            return None
        return k.target_per_pod * k.pods_ready

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if status < 400)

    @property
    def errors_http(self) -> int:
        return self.answered - self.ok

    @property
    def errors(self) -> int:
        return self.errors_http + sum(self.failures.values())

    def as_csv(self, status_codes: Sequence[int]) -> dict[str, object]:
        k = self.knative
        values: dict[str, object] = {
            "second": self.second,
            "time_utc": self.time_utc,
            "users": self.users,
            "asked_rate": self.asked_rate,
            "sent": self.sent,
            "answered": self.answered,
            "ok": self.ok,
            "errors": self.errors,
            "errors_http": self.errors_http,
            **{f"errors_{kind}": self.failures.get(kind, 0) for kind in FAILURE_KINDS},
            "p50_ms": _rounded(self.p50_ms),
            "p95_ms": _rounded(self.p95_ms),
            "p99_ms": _rounded(self.p99_ms),
            "max_ms": _rounded(self.max_ms),
            "generator_cpu_percent": _rounded(self.generator_cpu, 1),
            "host_cpu_percent": _rounded(self.host_cpu, 1),
            "revision": k.revision if k else None,
            "pa_desired": k.desired_scale if k else None,
            "pa_actual": k.actual_scale if k else None,
            "pods_ready": k.pods_ready if k else None,
            "pods_pending": k.pods_pending if k else None,
            "pods_terminating": k.pods_terminating if k else None,
            "sks_mode": k.sks_mode if k else None,
            "activator_in_path": _flag(k.activator_in_path) if k else None,
            "loop_lag_max_ms": _rounded(self.loop_lag_max_ms),
            "dropped": self.dropped,
            "in_flight_mean": _rounded(self.in_flight_mean, 3),
            "in_flight_max": self.in_flight_max,
            "target_in_flight": _rounded(self.target_in_flight),
            "in_pods_mean": _rounded(self.in_pods_mean, 3),
            "service_p50_ms": _rounded(self.service_p50_ms),
            "service_p95_ms": _rounded(self.service_p95_ms),
        }
        values.update({f"status_{code}": self.statuses.get(code, 0) for code in status_codes})
        return values


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


class TimelineRecorder:
    """Collects events into one bucket per second of a run of ``duration_s`` seconds."""

    def __init__(self, started_at: float, duration_s: int) -> None:
        self.started_at = started_at
        self.duration_s = duration_s
        self._seconds = [_Second() for _ in range(duration_s)]
        self._knative_at = [-1.0] * duration_s
        self.by_kind: dict[str, KindTotals] = {}

    def _bucket(self, at: float) -> int:
        return min(max(int(at - self.started_at), 0), self.duration_s - 1)

    def _kind(self, kind: str) -> KindTotals:
        return self.by_kind.setdefault(kind, KindTotals())

    def record_request(
        self,
        kind: str,
        due: float,
        sent: float,
        end: float,
        status: int | None,
        failure: str | None,
    ) -> None:
        """One finished request: an HTTP ``status``, or a ``failure`` kind when none came back."""
        self._seconds[self._bucket(sent)].sent += 1
        finished = self._seconds[self._bucket(end)]
        totals = self._kind(kind)
        totals.sent += 1
        if status is not None:
            finished.statuses[status] += 1
            finished.latencies_ms.append((end - due) * 1000)
            finished.service_ms.append((end - sent) * 1000)
            totals.answered += 1
            totals.statuses[status] += 1
        else:
            reason = failure if failure in FAILURE_KINDS else "other"
            finished.failures[reason] += 1
            totals.failures[reason] += 1

    def record_unfinished(self, sent: float, kind: str) -> None:
        """A request sent and never finished (the run was interrupted while it was out)."""
        self._seconds[self._bucket(sent)].sent += 1
        self._kind(kind).sent += 1

    def record_load(
        self,
        index: int,
        users: int | None,
        asked_rate: float | None,
        generator_cpu: float | None,
        host_cpu: float | None,
        *,
        loop_lag_max_ms: float | None = None,
        dropped: int = 0,
        in_flight_mean: float = 0.0,
        in_flight_max: int = 0,
    ) -> None:
        """The measurements of second ``index``."""
        second = self._seconds[min(max(index, 0), self.duration_s - 1)]
        second.users, second.asked_rate = users, asked_rate
        second.generator_cpu, second.host_cpu = generator_cpu, host_cpu
        second.loop_lag_max_ms = loop_lag_max_ms
        second.dropped = dropped
        second.in_flight_mean, second.in_flight_max = in_flight_mean, in_flight_max

    def record_in_pods(self, per_second: Sequence[float | None]) -> None:
        """Requests in the pods per second, from the queue-proxies' reports."""
        for second, value in zip(self._seconds, per_second, strict=False):
            second.in_pods_mean = value

    def record_knative(self, at: float, state: KnativeState) -> None:
        index = self._bucket(at)
        if at >= self._knative_at[index]:
            self._seconds[index].knative = state
            self._knative_at[index] = at

    def truncate(self, duration_s: int) -> None:
        """End the timeline early (an interrupted run); later answers move into the last second."""
        duration_s = min(max(1, duration_s), self.duration_s)
        last = self._seconds[duration_s - 1]
        for later in self._seconds[duration_s:]:
            last.sent += later.sent
            last.statuses.update(later.statuses)
            last.failures.update(later.failures)
            last.latencies_ms.extend(later.latencies_ms)
            last.service_ms.extend(later.service_ms)
        del self._seconds[duration_s:], self._knative_at[duration_s:]
        self.duration_s = duration_s

    def _row(self, index: int, state: KnativeState | None) -> TimelineRow:
        second = self._seconds[index]
        latencies = sorted(second.latencies_ms)
        service = sorted(second.service_ms)
        moment = datetime.fromtimestamp(self.started_at + index, UTC)
        return TimelineRow(
            second=index,
            time_utc=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            users=second.users,
            asked_rate=second.asked_rate,
            sent=second.sent,
            statuses=dict(second.statuses),
            failures=dict(second.failures),
            p50_ms=percentile(latencies, 0.50),
            p95_ms=percentile(latencies, 0.95),
            p99_ms=percentile(latencies, 0.99),
            max_ms=latencies[-1] if latencies else None,
            generator_cpu=second.generator_cpu,
            host_cpu=second.host_cpu,
            knative=state,
            loop_lag_max_ms=second.loop_lag_max_ms,
            dropped=second.dropped,
            in_flight_mean=second.in_flight_mean,
            in_flight_max=second.in_flight_max,
            in_pods_mean=second.in_pods_mean,
            service_p50_ms=percentile(service, 0.50),
            service_p95_ms=percentile(service, 0.95),
        )

    def row(self, index: int) -> TimelineRow:
        """Second ``index`` as it stands now (for the progress line)."""
        return self._row(index, self._seconds[index].knative)

    def rows(self) -> list[TimelineRow]:
        """One row per second; a Knative state holds until the next event changes it."""
        rows: list[TimelineRow] = []
        last_state: KnativeState | None = None
        for index, second in enumerate(self._seconds):
            if second.knative is not None:
                last_state = second.knative
            rows.append(self._row(index, last_state))
        return rows

    def all_latencies_ms(self) -> list[float]:
        return sorted(value for second in self._seconds for value in second.latencies_ms)

    def all_service_ms(self) -> list[float]:
        return sorted(value for second in self._seconds for value in second.service_ms)


def status_codes_of(rows: Iterable[TimelineRow]) -> list[int]:
    return sorted({code for row in rows for code in row.statuses})


def write_csv(rows: Sequence[TimelineRow], path: Path) -> None:
    codes = status_codes_of(rows)
    columns = [*BASE_COLUMNS, *(f"status_{code}" for code in codes)]
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.as_csv(codes).items()})
