"""Reads the Knative state of one service: the scale its autoscaler wants, its pods, the activator.

Where each number comes from (Knative Serving's own objects, all named after the revision):
  Service (serving.knative.dev/v1)          which revision is current (traffic, else latest)
  PodAutoscaler (autoscaling.internal...)   status.desiredScale (-1 until metrics exist) and
                                            status.actualScale (ready pods)
  Pods with serving.knative.dev/revision=R  ready, pending (not ready yet), terminating
  ServerlessService (networking.internal...) spec.mode: Proxy = the activator is in the path,
                                            Serve = requests go straight to the pods

The API calls go through a ``KnativeSource``; ``kube_source.KubernetesSource`` is the real one.
Every field may be missing while Knative is still creating things, so each reading is optional.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from loadtest.errors import KubernetesError

REVISION_LABEL = "serving.knative.dev/revision"
PROXY_MODE = "Proxy"

ApiObject = Mapping[str, Any]


class KnativeSource(Protocol):
    """The Kubernetes API calls the reader needs; each returns API JSON as dicts.

    ``get_*`` return None when the object does not exist (yet). Other failures raise
    ``KubernetesError`` with a one-line explanation.
    """

    def get_service(self, namespace: str, name: str) -> ApiObject | None: ...

    def get_pod_autoscaler(self, namespace: str, name: str) -> ApiObject | None: ...

    def get_serverless_service(self, namespace: str, name: str) -> ApiObject | None: ...

    def list_pods(self, namespace: str, label_selector: str) -> Sequence[ApiObject]: ...


@dataclass(frozen=True)
class KnativeState:
    revision: str | None = None
    desired_scale: int | None = None
    actual_scale: int | None = None
    pods_ready: int = 0
    pods_pending: int = 0
    pods_terminating: int = 0
    sks_mode: str | None = None

    @property
    def activator_in_path(self) -> bool | None:
        return None if self.sks_mode is None else self.sks_mode == PROXY_MODE

    @property
    def pods_up(self) -> int:
        """Pods that serve or are about to: ready plus pending (terminating ones are leaving)."""
        return self.pods_ready + self.pods_pending


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


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


def _is_ready(pod: ApiObject) -> bool:
    for condition in _mapping(pod.get("status")).get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def count_pods(pods: Sequence[ApiObject]) -> tuple[int, int, int]:
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
            elif _is_ready(pod):
                ready += 1
            else:
                pending += 1
    return ready, pending, terminating


def serverless_service_mode(serverless_service: ApiObject | None) -> str | None:
    if serverless_service is None:
        return None
    mode = _mapping(serverless_service.get("spec")).get("mode")
    return str(mode) if mode else None


class KnativeReader:
    """Reads ``KnativeState`` of one Knative service, one API round per ``read()``."""

    def __init__(self, source: KnativeSource, namespace: str, service: str) -> None:
        self.source = source
        self.namespace = namespace
        self.service = service

    def _service_object(self) -> ApiObject:
        found = self.source.get_service(self.namespace, self.service)
        if found is None:
            raise KubernetesError(
                f"Knative service {self.service!r} not found in namespace {self.namespace!r}: "
                f"check the name with `kubectl get ksvc -n {self.namespace}`"
            )
        return found

    def check(self) -> KnativeState:
        """One read before the run, so that a wrong name or missing access stops it early."""
        return self.read()

    def read(self) -> KnativeState:
        revision = current_revision(self._service_object())
        if revision is None:
            return KnativeState()
        pod_autoscaler = self.source.get_pod_autoscaler(self.namespace, revision)
        desired, actual = pod_autoscaler_scale(pod_autoscaler)
        pods = self.source.list_pods(self.namespace, f"{REVISION_LABEL}={revision}")
        ready, pending, terminating = count_pods(pods)
        mode = serverless_service_mode(self.source.get_serverless_service(self.namespace, revision))
        return KnativeState(revision, desired, actual, ready, pending, terminating, mode)
