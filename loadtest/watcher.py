"""Knative state read with watches: one list (``resourceVersion=0``) per kind, then a watch from
that list's version, each in its own thread; every event is stamped with its arrival time.
One more thread reads each running pod's queue-proxy stat twice a second (see ``pod_stats``).

A watch that the server ends is opened again from the last version seen; one that is too old
(410 Gone) lists again. A failure is counted and reported, and the watch retries after a second.
"""

from __future__ import annotations

import csv
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from loadtest.errors import KubernetesError
from loadtest.knative import KINDS, SERVICE_LABEL, ApiObject, KnativeCache, KnativeState
from loadtest.pod_stats import PodSample, StatError, decode

RETRY_AFTER_FAILURE_S = 1.0
# Twice per report period, so that every once-a-second report is read.
POD_STAT_INTERVAL_S = 0.5


class Expired(Exception):
    """The watch's resourceVersion is gone: list again."""


class KnativeSource(Protocol):
    def list(
        self, kind: str, namespace: str, selector: dict[str, Any]
    ) -> tuple[list[ApiObject], str]: ...

    def watch(
        self,
        kind: str,
        namespace: str,
        selector: dict[str, Any],
        resource_version: str,
        stopper: Any,
    ) -> Any: ...

    def pod_stat(self, namespace: str, pod: str) -> bytes: ...


@dataclass(frozen=True)
class KnativeEvent:
    at: float
    kind: str
    event: str  # LIST, ADDED, MODIFIED, DELETED
    name: str
    state: KnativeState


@dataclass
class KnativeWatcher:
    source: KnativeSource
    namespace: str
    service: str
    events: list[KnativeEvent] = field(default_factory=list)
    states: list[tuple[float, KnativeState]] = field(default_factory=list)
    revisions: list[str] = field(default_factory=list)
    failures: int = 0
    last_error: str | None = None
    pod_samples: list[PodSample] = field(default_factory=list)
    pod_stat_failures: int = 0
    last_pod_stat_error: str | None = None

    def __post_init__(self) -> None:
        self.cache = KnativeCache(self.service)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._versions: dict[str, str] = {}
        self._watches: list[Any] = []
        self._threads: list[threading.Thread] = []

    def selector(self, kind: str) -> dict[str, Any]:
        if kind == "services":
            return {"field_selector": f"metadata.name={self.service}"}
        return {"label_selector": f"{SERVICE_LABEL}={self.service}"}

    def _list(self, kind: str) -> None:
        items, version = self.source.list(kind, self.namespace, self.selector(kind))
        self._versions[kind] = version
        self._note(kind, "LIST", "", self.cache.replace(kind, items))

    def check(self) -> KnativeState:
        """Lists everything once before the run: a wrong name or missing access stops it early."""
        for kind in KINDS:
            self._list(kind)
        if not self.cache.has_service():
            raise KubernetesError(
                f"Knative service {self.service!r} not found in namespace {self.namespace!r}: "
                f"check the name with `kubectl get ksvc -n {self.namespace}`"
            )
        return self.cache.state()

    def _note(self, kind: str, event: str, name: str, state: KnativeState) -> None:
        at = time.time()
        with self._lock:
            self.events.append(KnativeEvent(at, kind, event, name, state))
            if not self.states or self.states[-1][1] != state:
                self.states.append((at, state))
            if state.revision and state.revision not in self.revisions:
                self.revisions.append(state.revision)

    def _follow(self, kind: str) -> None:
        while not self._stopping.is_set():
            try:
                if kind not in self._versions:
                    self._list(kind)
                for event, obj in self.source.watch(
                    kind,
                    self.namespace,
                    self.selector(kind),
                    self._versions[kind],
                    self._watches.append,
                ):
                    if self._stopping.is_set():
                        return
                    metadata = obj.get("metadata") or {}
                    if event == "ERROR":
                        raise Expired()
                    if metadata.get("resourceVersion"):
                        self._versions[kind] = str(metadata["resourceVersion"])
                    if event == "BOOKMARK":
                        continue
                    name = str(metadata.get("name") or "")
                    self._note(kind, event, name, self.cache.apply(kind, event, obj))
            except Exception as error:
                if self._stopping.is_set():
                    return
                self._versions.pop(kind, None)
                if type(error).__name__ in ("Expired", "WatchExpired"):
                    continue
                with self._lock:
                    self.failures += 1
                    self.last_error = str(error) or type(error).__name__
                self._stopping.wait(RETRY_AFTER_FAILURE_S)

    def _sample_pods(self) -> None:
        uptimes: dict[str, float] = {}
        while not self._stopping.wait(POD_STAT_INTERVAL_S):
            for pod in self.cache.running_pods():
                try:
                    stat = decode(self.source.pod_stat(self.namespace, pod))
                except (KubernetesError, StatError) as error:
                    with self._lock:
                        self.pod_stat_failures += 1
                        self.last_pod_stat_error = str(error)
                    continue
                if stat.uptime_s == 0 or uptimes.get(pod) == stat.uptime_s:
                    continue  # no report made yet, or the one already read
                uptimes[pod] = stat.uptime_s
                with self._lock:
                    self.pod_samples.append(PodSample(time.time(), pod, stat.concurrency))

    def start(self) -> None:
        targets = [(self._follow, (kind,)) for kind in KINDS] + [(self._sample_pods, ())]
        for target, args in targets:
            thread = threading.Thread(target=target, args=args, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for watch in self._watches:
            watch.stop()

    def state_at(self, moment: float) -> KnativeState | None:
        """The state as the last event before ``moment`` left it."""
        with self._lock:
            found = None
            for at, state in self.states:
                if at > moment:
                    break
                found = state
            return found

    @property
    def last_state(self) -> KnativeState | None:
        with self._lock:
            return self.states[-1][1] if self.states else None


EVENT_COLUMNS = (
    "time_utc", "second", "resource", "event", "name", "revision", "pa_desired", "pa_actual",
    "pods_scheduled", "pods_ready", "pods_pending", "pods_terminating", "sks_mode",
    "activator_in_path",
)  # fmt: skip


def write_events(events: list[KnativeEvent], started_at: float, path: Path) -> None:
    """knative-events.csv: every event, to the millisecond, with the state it left."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(EVENT_COLUMNS)
        for event in events:
            state = event.state
            moment = datetime.fromtimestamp(event.at, UTC)
            writer.writerow(
                [
                    moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
                    f"{event.at - started_at:.3f}",
                    event.kind,
                    event.event,
                    event.name,
                    state.revision or "",
                    "" if state.desired_scale is None else state.desired_scale,
                    "" if state.actual_scale is None else state.actual_scale,
                    state.pods_scheduled,
                    state.pods_ready,
                    state.pods_pending,
                    state.pods_terminating,
                    state.sks_mode or "",
                    "" if state.activator_in_path is None else int(state.activator_in_path),
                ]
            )
