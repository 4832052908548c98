"""The Knative state of one service, kept current from watch events on Knative's own objects.

Where each number comes from (all objects carry the label serving.knative.dev/service=<name>):
  Service (serving.knative.dev/v1)          which revision is current (traffic, else latest)
  PodAutoscaler (autoscaling.internal...)   status.desiredScale (-1 until metrics exist) and
                                            status.actualScale (ready pods); the per-pod target
  Revision (serving.knative.dev/v1)         status.desiredReplicas/actualReplicas, used where the
                                            PodAutoscaler has no status yet
  Pods of the revision                      scheduled, ready, pending (not ready), terminating
  ServerlessService (networking.internal...) the activator in the path: its condition
                                            ActivatorEndpointsPopulated (True while requests go
                                            through the activator, which Knative forces while no
                                            pod is ready); spec.mode (Proxy/Serve) is only the
                                            mode asked for, kept beside it

``KnativeCache`` holds the objects as the API last showed them; every change gives a new
``KnativeState``, stamped with the time the event arrived (to the millisecond).
Every field may be missing while Knative is still creating things, so each reading is optional.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SERVICE_LABEL = "serving.knative.dev/service"
REVISION_LABEL = "serving.knative.dev/revision"
PROXY_MODE = "Proxy"
ACTIVATOR_CONDITION = "ActivatorEndpointsPopulated"
TARGET_ANNOTATION = "autoscaling.knative.dev/target"
UTILIZATION_ANNOTATION = "autoscaling.knative.dev/target-utilization-percentage"
METRIC_ANNOTATION = "autoscaling.knative.dev/metric"
# Knative's defaults (config-autoscaler): container-concurrency-target-default and
# container-concurrency-target-percentage.
DEFAULT_TARGET = 100.0
DEFAULT_UTILIZATION = 0.7

ApiObject = Mapping[str, Any]
KINDS = ("services", "podautoscalers", "revisions", "serverlessservices", "pods")


@dataclass(frozen=True)
class KnativeState:
    revision: str | None = None
    desired_scale: int | None = None
    actual_scale: int | None = None
    pods_ready: int = 0
    pods_pending: int = 0
    pods_terminating: int = 0
    sks_mode: str | None = None
    activator_endpoints: bool | None = None
    target_per_pod: float | None = None
    pods_scheduled: int = 0

    @property
    def activator_in_path(self) -> bool | None:
        """The effective state: the SKS condition when known, else the mode asked for."""
        if self.activator_endpoints is not None:
            return self.activator_endpoints
        return None if self.sks_mode is None else self.sks_mode == PROXY_MODE

    @property
    def pods_up(self) -> int:
        """Pods that serve or are about to: ready plus pending (terminating ones are leaving)."""
        return self.pods_ready + self.pods_pending


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _name(obj: ApiObject) -> str:
    return str(_mapping(obj.get("metadata")).get("name") or "")


def current_revision(service: ApiObject) -> str | None:
    """The revision that takes the traffic: the largest traffic share, else the latest ready one.

    A service that was just created has no status yet; then there is no revision to watch.
    """
    status = _mapping(service.get("status"))
    targets = [t for t in status.get("traffic") or [] if isinstance(t, Mapping)]
    named = [t for t in targets if t.get("revisionName")]
    if named:
        busiest = max(named, key=lambda target: target.get("percent") or 0)
        return str(busiest["revisionName"])
    for field in ("latestReadyRevisionName", "latestCreatedRevisionName"):
        if status.get(field):
            return str(status[field])
    return None


def _scale(status: Mapping[str, Any], field: str) -> int | None:
    value = status.get(field)
    # desiredScale is -1 while the autoscaler has no metrics yet: unknown, not a number of pods.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def pod_autoscaler_scale(pod_autoscaler: ApiObject | None) -> tuple[int | None, int | None]:
    """(desired, actual) from a PodAutoscaler; None for each value not known."""
    if pod_autoscaler is None:
        return None, None
    status = _mapping(pod_autoscaler.get("status"))
    return _scale(status, "desiredScale"), _scale(status, "actualScale")


def revision_scale(revision: ApiObject | None) -> tuple[int | None, int | None]:
    """(desired, actual) from a Revision's status.desiredReplicas/actualReplicas."""
    if revision is None:
        return None, None
    status = _mapping(revision.get("status"))
    return _scale(status, "desiredReplicas"), _scale(status, "actualReplicas")


def _condition(obj: ApiObject, kind: str) -> str | None:
    for condition in _mapping(obj.get("status")).get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return str(condition.get("status"))
    return None


def count_pods(pods: Iterable[ApiObject]) -> tuple[int, int, int]:
    """(ready, pending, terminating), counted the way Knative's autoscaler counts them.

    Pending means created but not ready yet: phase Pending, or Running without Ready=True.
    Pods that finished (Succeeded/Failed) no longer count.
    """
    ready = pending = terminating = 0
    for pod in pods:
        phase = _mapping(pod.get("status")).get("phase")
        if phase == "Pending":
            pending += 1
        elif phase == "Running":
            if _mapping(pod.get("metadata")).get("deletionTimestamp"):
                terminating += 1
            elif _condition(pod, "Ready") == "True":
                ready += 1
            else:
                pending += 1
    return ready, pending, terminating


def count_scheduled(pods: Iterable[ApiObject]) -> int:
    """Pods placed on a node (PodScheduled=True) and not leaving."""
    return sum(
        1
        for pod in pods
        if _condition(pod, "PodScheduled") == "True"
        and not _mapping(pod.get("metadata")).get("deletionTimestamp")
        and _mapping(pod.get("status")).get("phase") in ("Pending", "Running")
    )


def serverless_service_mode(serverless_service: ApiObject | None) -> str | None:
    if serverless_service is None:
        return None
    mode = _mapping(serverless_service.get("spec")).get("mode")
    return str(mode) if mode else None


def activator_endpoints(serverless_service: ApiObject | None) -> bool | None:
    """Whether the activator's endpoints serve the revision, from the SKS condition."""
    if serverless_service is None:
        return None
    status = _condition(serverless_service, ACTIVATOR_CONDITION)
    return None if status not in ("True", "False") else status == "True"


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def target_per_pod(pod_autoscaler: ApiObject | None, revision: ApiObject | None) -> float | None:
    """Requests in flight per pod the autoscaler aims at: target x utilization (concurrency).

    The target is the ``target`` annotation (capped by containerConcurrency when that is set),
    else containerConcurrency, else Knative's default 100; utilization is the annotation's
    percentage, else 70 %. None for the rps metric, whose target is not a concurrency.
    """
    source = pod_autoscaler or revision
    if source is None:
        return None
    annotations = _mapping(_mapping(source.get("metadata")).get("annotations"))
    if annotations.get(METRIC_ANNOTATION, "concurrency") != "concurrency":
        return None
    concurrency = _float(_mapping((revision or {}).get("spec")).get("containerConcurrency")) or 0
    target = _float(annotations.get(TARGET_ANNOTATION))
    if target is None:
        target = concurrency if concurrency > 0 else DEFAULT_TARGET
    elif concurrency > 0:
        target = min(target, concurrency)
    percent = _float(annotations.get(UTILIZATION_ANNOTATION))
    utilization = percent / 100 if percent is not None else DEFAULT_UTILIZATION
    return target * utilization


class KnativeCache:
    """The objects of one Knative service as the API last showed them; safe across threads."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._objects: dict[str, dict[str, ApiObject]] = {kind: {} for kind in KINDS}
        self._lock = threading.Lock()

    def replace(self, kind: str, items: Iterable[ApiObject]) -> KnativeState:
        """A fresh list of ``kind``: everything known of that kind is replaced."""
        with self._lock:
            self._objects[kind] = {_name(item): item for item in items}
            return self._state()

    def apply(self, kind: str, event: str, obj: ApiObject) -> KnativeState:
        """One watch event: ADDED, MODIFIED or DELETED."""
        with self._lock:
            if event == "DELETED":
                self._objects[kind].pop(_name(obj), None)
            else:
                self._objects[kind][_name(obj)] = obj
            return self._state()

    def state(self) -> KnativeState:
        with self._lock:
            return self._state()

    def has_service(self) -> bool:
        with self._lock:
            return self.service in self._objects["services"]

    def running_pods(self) -> list[str]:
        """The current revision's pods that run and are not leaving: those the autoscaler
        scrapes."""
        with self._lock:
            return [
                _name(pod)
                for pod in self._revision_pods(self._revision())
                if _mapping(pod.get("status")).get("phase") == "Running"
                and not _mapping(pod.get("metadata")).get("deletionTimestamp")
            ]

    def _revision(self) -> str | None:
        service = self._objects["services"].get(self.service)
        return current_revision(service) if service is not None else None

    def _revision_pods(self, revision_name: str | None) -> list[ApiObject]:
        return [
            pod
            for pod in self._objects["pods"].values()
            if _mapping(_mapping(pod.get("metadata")).get("labels")).get(REVISION_LABEL)
            == revision_name
        ]

    def _state(self) -> KnativeState:
        revision_name = self._revision()
        if revision_name is None:
            return KnativeState()
        pod_autoscaler = self._objects["podautoscalers"].get(revision_name)
        revision = self._objects["revisions"].get(revision_name)
        desired, actual = pod_autoscaler_scale(pod_autoscaler)
        if desired is None and actual is None:
            desired, actual = revision_scale(revision)
        pods = self._revision_pods(revision_name)
        ready, pending, terminating = count_pods(pods)
        sks = self._objects["serverlessservices"].get(revision_name)
        return KnativeState(
            revision=revision_name,
            desired_scale=desired,
            actual_scale=actual,
            pods_ready=ready,
            pods_pending=pending,
            pods_terminating=terminating,
            sks_mode=serverless_service_mode(sks),
            activator_endpoints=activator_endpoints(sks),
            target_per_pod=target_per_pod(pod_autoscaler, revision),
            pods_scheduled=count_scheduled(pods),
        )
