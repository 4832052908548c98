"""A small stand-in for the Kubernetes API server: real HTTP, Knative objects from fixtures.

It answers the list and watch calls the load test makes (Services, Revisions, PodAutoscalers,
ServerlessServices and pods, by label or field selector) the way the API server does, including
its error bodies: a plain "404 page not found" for an API the cluster does not serve and a
Forbidden Status for resources listed in ``denied``. A watch streams ADDED/MODIFIED/DELETED
events, one JSON object per line, as the state changes.

A pod's queue-proxy stat (what the autoscaler scrapes on port 9090) is served through the pod
proxy path for the pods named in ``pod_concurrency``, encoded here from Knative's stat.proto field
by field; each pod's report changes (a new process uptime) every second read, as a queue-proxy's
does once a second while it is read twice a second. Other pods answer 404, as a pod that left.

``phases`` lets the state change during a run: phase (t, state) holds from ``t`` seconds after
the first watch was opened, which is when the tool starts its run.
"""

from __future__ import annotations

import copy
import json
import re
import struct
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures"

ROUTES = {
    ("serving.knative.dev", "services"): "services",
    ("serving.knative.dev", "revisions"): "revisions",
    ("autoscaling.internal.knative.dev", "podautoscalers"): "podautoscalers",
    ("networking.internal.knative.dev", "serverlessservices"): "serverlessservices",
}
CUSTOM_PATH = re.compile(r"^/apis/([^/]+)/([^/]+)/namespaces/([^/]+)/([^/]+)$")
PODS_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods$")
POD_STAT_PATH = re.compile(
    r"^/api/v1/namespaces/([^/]+)/pods/([^/:%]+)(?::|%3A)9090/proxy/metrics$"
)
WATCH_TICK_S = 0.01


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


@dataclass
class ClusterState:
    """Objects by (plural, namespace, name); pods by name under the plural "pods"."""

    objects: dict[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)

    def put(self, obj: Mapping[str, Any], plural: str) -> ClusterState:
        meta = obj["metadata"]
        self.objects[(plural, meta.get("namespace", "default"), meta["name"])] = obj
        return self

    def with_pods(self, pods: list[Mapping[str, Any]]) -> ClusterState:
        for pod in pods:
            self.put(pod, "pods")
        return self


def stat_message(pod: str, concurrency: float, uptime_s: float) -> bytes:
    """A queue-proxy's Stat: field 1 pod_name (string), 2 average_concurrent_requests and
    6 process_uptime (doubles, little-endian 64-bit), each after its tag (number << 3 | wire)."""
    name = pod.encode()
    return (
        bytes([1 << 3 | 2, len(name)])
        + name
        + bytes([2 << 3 | 1])
        + struct.pack("<d", concurrency)
        + bytes([6 << 3 | 1])
        + struct.pack("<d", uptime_s)
    )


def status_body(code: int, reason: str, message: str, details: dict[str, str]) -> bytes:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }
    return json.dumps(body).encode()


def _matches(obj: Mapping[str, Any], query: dict[str, str]) -> bool:
    meta = obj.get("metadata", {})
    label = query.get("labelSelector", "")
    if label:
        key, _, value = label.partition("=")
        if meta.get("labels", {}).get(key) != value:
            return False
    fields = query.get("fieldSelector", "")
    if fields:
        key, _, value = fields.partition("=")
        if key == "metadata.name" and meta.get("name") != value:
            return False
    return True


@dataclass
class StubKubeApi:
    phases: list[tuple[float, ClusterState]]
    denied: set[str] = field(default_factory=set)
    serves_knative: bool = True
    url: str = ""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    clock_started: float | None = None
    pod_concurrency: dict[str, float] = field(default_factory=dict)
    stat_reads: dict[str, int] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)

    def phase_now(self) -> int:
        if self.clock_started is None:
            return 0
        elapsed = time.monotonic() - self.clock_started
        return max(i for i, (at, _) in enumerate(self.phases) if elapsed >= at or i == 0)

    def items(
        self, plural: str, namespace: str, query: dict[str, str], phase: int | None = None
    ) -> dict[str, Any]:
        """The objects of ``plural`` now (or in ``phase``), by name, each with the phase as its
        resourceVersion."""
        phase = self.phase_now() if phase is None else phase
        found: dict[str, Any] = {}
        for (kind, ns, name), obj in self.phases[phase][1].objects.items():
            if kind == plural and ns == namespace and _matches(obj, query):
                item = copy.deepcopy(dict(obj))
                item["metadata"]["resourceVersion"] = str(100 + phase)
                found[name] = item
        return found

    def route(self, path: str) -> tuple[str, str, str] | tuple[int, str, bytes]:
        """(plural, namespace, group) of a collection path, or an error answer."""
        pods = PODS_PATH.match(path)
        if pods:
            plural, namespace, group = "pods", pods.group(1), ""
        else:
            custom = CUSTOM_PATH.match(path)
            known = ROUTES.get((custom.group(1), custom.group(4))) if custom else None
            if custom is None or known is None or not self.serves_knative:
                return 404, "text/plain; charset=utf-8", b"404 page not found\n"
            plural, namespace, group = known, custom.group(3), custom.group(1)
        if plural in self.denied:
            resource = plural if not group else f"{plural}.{group}"
            message = (
                f'{resource} is forbidden: User "dev" cannot list resource "{plural}" in API '
                f'group "{group}" in the namespace "{namespace}"'
            )
            body = status_body(403, "Forbidden", message, {"kind": plural})
            return 403, "application/json", body
        return plural, namespace, group

    def kubeconfig(self, directory: Path, context: str = "stub") -> Path:
        path = directory / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: stub\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: dev\n  user:\n    token: stub-token\n"
            f"contexts:\n- name: {context}\n  context:\n    cluster: stub\n    user: dev\n"
            "    namespace: default\n"
            f"current-context: {context}\n"
        )
        return path


@contextmanager
def serve(api: StubKubeApi) -> Iterator[StubKubeApi]:
    class Handler(BaseHTTPRequestHandler):
        # Watches stream in chunks, as the API server's do: a client reads each event as it comes.
        protocol_version = "HTTP/1.1"

        def answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            api.requests.append((parts.path, query))
            stat = POD_STAT_PATH.match(parts.path)
            if stat:
                self.pod_stat(stat.group(2))
                return
            routed = api.route(parts.path)
            if isinstance(routed[0], int):
                status, content_type, body = routed  # type: ignore[misc]
                self.answer(status, content_type, body)
                return
            plural, namespace, _ = routed  # type: ignore[misc]
            if query.get("watch") in ("true", "1", "True"):
                self.watch(str(plural), str(namespace), query)
                return
            items = list(api.items(str(plural), str(namespace), query).values())
            body = {
                "kind": "List",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(100 + api.phase_now())},
                "items": items,
            }
            self.answer(200, "application/json", json.dumps(body).encode())

        def pod_stat(self, pod: str) -> None:
            if pod not in api.pod_concurrency:
                self.answer(404, "application/json", status_body(404, "NotFound", pod, {}))
                return
            reads = api.stat_reads[pod] = api.stat_reads.get(pod, 0) + 1
            body = stat_message(pod, api.pod_concurrency[pod], 1.0 + (reads - 1) // 2)
            self.answer(200, "application/protobuf", body)

        def watch(self, plural: str, namespace: str, query: dict[str, str]) -> None:
            if api.clock_started is None:
                api.clock_started = time.monotonic()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            version = query.get("resourceVersion", "")
            # A watch from a list's version starts from what that list showed.
            known = api.items(plural, namespace, query, int(version) - 100) if version else {}
            ends = time.monotonic() + float(query.get("timeoutSeconds", "30"))
            try:
                while time.monotonic() < ends and not api.stopping.is_set():
                    now = api.items(plural, namespace, query)
                    events = [
                        ("DELETED", obj) for name, obj in known.items() if name not in now
                    ] + [
                        ("ADDED" if name not in known else "MODIFIED", obj)
                        for name, obj in now.items()
                        if name not in known
                        or _spec_and_status(known[name]) != _spec_and_status(obj)
                    ]
                    for kind, obj in events:
                        line = (json.dumps({"type": kind, "object": obj}) + "\n").encode()
                        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                    if events:
                        self.wfile.flush()
                    known = now
                    time.sleep(WATCH_TICK_S)
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                return

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.stopping.set()
        server.shutdown()
        server.server_close()


def _spec_and_status(obj: Mapping[str, Any]) -> Any:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return meta, obj.get("spec"), obj.get("status")
