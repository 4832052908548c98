"""The per-second timeline: what was sent, what came back, how fast, and what Knative did.

Requests count as sent in the second they start and as answered (with their latency) in the
second they finish; answers that arrive while the run stops count in its last second. A request
is answered when an HTTP status came back, whatever it was; it is an error when that status is
400 or above, or when no status came back at all (timeout, connection error, other).
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
# A Kubernetes sample stands for the seconds after it until a newer one, at most this long.
KNATIVE_SAMPLE_LIFETIME_S = 3

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
    "revision",
    "pa_desired",
    "pa_actual",
    "pods_ready",
    "pods_pending",
    "pods_terminating",
    "sks_mode",
    "activator_in_path",
)


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when there are none."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class FirstRequest:
    """The earliest request started in a second, to find the answer time right after zero pods."""

    started_at: float
    latency_ms: float
    status: int | None
    failure: str | None


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
    first_request: FirstRequest | None = None
    users: int | None = None
    asked_rate: float | None = None
    generator_cpu: float | None = None
    host_cpu: float | None = None
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
    first_request: FirstRequest | None

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

    def record_sent(self, at: float, kind: str) -> None:
        self._seconds[self._bucket(at)].sent += 1
        self._kind(kind).sent += 1

    def record_result(
        self,
        kind: str,
        started_at: float,
        latency_ms: float,
        status: int | None,
        failure: str | None,
    ) -> None:
        """One finished request: an HTTP ``status``, or a ``failure`` kind when none came back."""
        finished = self._seconds[self._bucket(started_at + latency_ms / 1000)]
        totals = self._kind(kind)
        if status is not None:
            finished.statuses[status] += 1
            finished.latencies_ms.append(latency_ms)
            totals.answered += 1
            totals.statuses[status] += 1
        else:
            reason = failure if failure in FAILURE_KINDS else "other"
            finished.failures[reason] += 1
            totals.failures[reason] += 1
        began = self._seconds[self._bucket(started_at)]
        if began.first_request is None or started_at < began.first_request.started_at:
            began.first_request = FirstRequest(started_at, latency_ms, status, failure)

    def record_load(
        self,
        index: int,
        users: int,
        asked_rate: float | None,
        generator_cpu: float | None,
        host_cpu: float | None,
    ) -> None:
        """The state at the end of second ``index`` (by number: a late sampler lands right)."""
        second = self._seconds[min(max(index, 0), self.duration_s - 1)]
        second.users, second.asked_rate = users, asked_rate
        second.generator_cpu, second.host_cpu = generator_cpu, host_cpu

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
        del self._seconds[duration_s:], self._knative_at[duration_s:]
        self.duration_s = duration_s

    def _row(self, index: int, state: KnativeState | None) -> TimelineRow:
        second = self._seconds[index]
        latencies = sorted(second.latencies_ms)
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
            first_request=second.first_request,
        )

    def row(self, index: int) -> TimelineRow:
        """Second ``index`` as it stands now (for the progress line)."""
        return self._row(index, self._seconds[index].knative)

    def rows(self) -> list[TimelineRow]:
        rows: list[TimelineRow] = []
        last_state: KnativeState | None = None
        last_state_second = -KNATIVE_SAMPLE_LIFETIME_S - 1
        for index, second in enumerate(self._seconds):
            if second.knative is not None:
                last_state, last_state_second = second.knative, index
            fresh = index - last_state_second < KNATIVE_SAMPLE_LIFETIME_S
            rows.append(self._row(index, last_state if fresh else None))
        return rows

    def all_latencies_ms(self) -> list[float]:
        return sorted(value for second in self._seconds for value in second.latencies_ms)


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
