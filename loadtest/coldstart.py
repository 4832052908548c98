"""``python -m loadtest coldstart``: a Knative Service taken from zero pods, phase by phase.

Each run waits until the service has no pod, sends one request, and times from the moment it
was sent: the pod created, the pod scheduled, the function's container started, the pod Ready
(the function answers its readiness probe, so Knative may route to it), and the first answer
(through the activator). The pod's phases are the moments this process saw them in a watch of
the API, not the API's timestamps, which have a resolution of one second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loadtest.errors import KubernetesError
from loadtest.knative import ApiObject
from loadtest.kube_source import KubernetesSource, connect
from loadtest.timeline import percentile

PHASES = ("pod_created", "pod_scheduled", "container_started", "pod_ready", "first_answer")
QUEUE_PROXY = "queue-proxy"


@dataclass
class PodWatch:
    """The first time each phase is seen for any pod of the service, on this process's clock."""

    seen: dict[str, float] = field(default_factory=dict)
    pods: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, pod: ApiObject, now: float) -> None:
        status = pod.get("status") or {}
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        running = [
            c
            for c in status.get("containerStatuses") or []
            if c.get("name") != QUEUE_PROXY and (c.get("state") or {}).get("running")
        ]
        reached = {
            "pod_created": True,
            "pod_scheduled": conditions.get("PodScheduled") == "True",
            "container_started": bool(running),
            "pod_ready": conditions.get("Ready") == "True",
        }
        with self.lock:
            self.pods.add(str((pod.get("metadata") or {}).get("name")))
            for phase, done in reached.items():
                if done:
                    self.seen.setdefault(phase, now)


def _selector(service: str) -> dict[str, Any]:
    return {"label_selector": f"serving.knative.dev/service={service}"}


def live_pods(source: KubernetesSource, namespace: str, service: str) -> list[ApiObject]:
    """Pods of the service that are not on their way out; an API error raises, never reads as 0."""
    items, _ = source.list("pods", namespace, _selector(service))
    return [p for p in items if not (p.get("metadata") or {}).get("deletionTimestamp")]


def wait_for_zero(source: KubernetesSource, namespace: str, service: str, timeout: float) -> float:
    started = time.monotonic()
    while live_pods(source, namespace, service):
        if time.monotonic() - started > timeout:
            raise KubernetesError(
                f"{service} still has pods after {timeout:.0f} s without requests"
            )
        time.sleep(1)
    return time.monotonic() - started


def measure(
    source: KubernetesSource,
    namespace: str,
    service: str,
    url: str,
    path: str,
    timeout: float,
    host: str | None = None,
) -> dict[str, float]:
    """One cold start: the seconds from sending the request to each phase."""
    if live_pods(source, namespace, service):
        raise KubernetesError(f"{service} has pods: a cold start must begin at zero")
    _, version = source.list("pods", namespace, _selector(service))
    watch = PodWatch()
    stoppers: list[Any] = []
    done = threading.Event()

    failures: list[KubernetesError] = []

    def follow() -> None:
        try:
            for _, pod in source.watch(
                "pods", namespace, _selector(service), version, stoppers.append
            ):
                watch.observe(pod, time.monotonic())
                if done.is_set():
                    return
        except KubernetesError as error:
            if not done.is_set():  # stopping the watch ends its stream: not a failure
                failures.append(error)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    sent = time.monotonic()
    answer = httpx.get(f"{url}{path}", timeout=timeout, headers={"Host": host} if host else None)
    answered = time.monotonic()
    if answer.status_code != 200:
        raise KubernetesError(f"the first request from zero answered {answer.status_code}")
    deadline = time.monotonic() + 10  # the watch may trail the answer by a moment
    while "pod_ready" not in watch.seen and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    for stopper in stoppers:
        stopper.stop()
    if failures:
        raise failures[0]
    phases = {phase: round(at - sent, 3) for phase, at in watch.seen.items()}
    phases["first_answer"] = round(answered - sent, 3)
    missing = [p for p in PHASES if p not in phases]
    if missing:
        raise KubernetesError(f"the watch never saw {', '.join(missing)} for {service}")
    return {p: phases[p] for p in PHASES}


def image_bytes(source: KubernetesSource, namespace: str, service: str) -> int | None:
    """The size the node reports for the service's image (status.images of its node)."""
    ksvc: Any = source.custom.get_namespaced_custom_object(
        "serving.knative.dev", "v1", namespace, "services", service
    )
    image = ksvc["spec"]["template"]["spec"]["containers"][0]["image"]
    for node in source.core.list_node().items:
        for entry in (node.status.images if node.status else None) or []:
            names = entry.names or []
            if entry.size_bytes and any(n == image or n.endswith("/" + image) for n in names):
                return int(entry.size_bytes)
    return None


def summarise(runs: list[dict[str, float]]) -> dict[str, dict[str, float | None]]:
    out = {}
    for phase in PHASES:
        values = sorted(run[phase] for run in runs)
        # The nearest rank, as the timeline's: always a value that was measured.
        out[phase] = {
            "median": round(statistics.median(values), 3),
            "p90": percentile(values, 0.9),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest coldstart", description=__doc__)
    parser.add_argument("--url", required=True, help="the route of the Knative Service")
    parser.add_argument("--host", help="a Host header, for an ingress reached by its address")
    parser.add_argument("--service", required=True)
    parser.add_argument("--namespace", help="default: the context's")
    parser.add_argument("--kube-context")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--path", default="/health/readiness", help="what the request asks for")
    parser.add_argument("--idle-timeout", type=float, default=300, help="seconds to reach zero")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        source, default_namespace = connect(args.kube_context)
        namespace = args.namespace or default_namespace
        runs = []
        for number in range(1, args.runs + 1):
            waited = wait_for_zero(source, namespace, args.service, args.idle_timeout)
            phases = measure(
                source, namespace, args.service, args.url.rstrip("/"), args.path, 120, args.host
            )
            runs.append(phases)
            line = "  ".join(f"{k} {v:.2f}s" for k, v in phases.items())
            print(f"coldstart {number}/{args.runs} (zero after {waited:.0f}s): {line}", flush=True)
        result = {
            "service": f"{namespace}/{args.service}",
            "runs": runs,
            "summary": summarise(runs),
            "image_bytes": image_bytes(source, namespace, args.service),
        }
    except KubernetesError as error:
        print(f"coldstart: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "coldstart.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0
